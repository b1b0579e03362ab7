"""The upstream: the pooled chat-completions client, retry timing, the SSE codec and the offline model."""
