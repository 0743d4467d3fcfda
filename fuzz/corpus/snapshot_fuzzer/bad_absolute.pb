

/etc/passwd¤x