"""The library: what a listener owns, downloads in every format, signed and key-in-link links."""
