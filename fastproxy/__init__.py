"""fastproxy: a Deepgram Voice Agent <-> OpenAI Realtime proxy (see README.md)."""

__version__ = "0.1.0"
