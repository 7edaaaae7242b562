"""Release helpers: tag conventions (tagging), applying tags, tag lint."""
