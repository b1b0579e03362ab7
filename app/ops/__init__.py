"""Operations: logging with secret redaction, and TLS for serving HTTPS."""
