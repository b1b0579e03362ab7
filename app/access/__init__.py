"""Access: who is calling (client keys), what they may spend (limits and their counters), proxy trust."""
