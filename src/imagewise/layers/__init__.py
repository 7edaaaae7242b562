"""Layer reading: decompression sniffed from the bytes, a streaming tar walk, whiteouts, the
merged file tree, safe extraction, and the single pass that feeds every visitor."""
