"""Image fixtures: images the tests build themselves (random layers, real rootfs tarballs)."""
