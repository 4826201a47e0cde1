"""The way in: the HTTP front door, the stdio bridge, and the gateway that decides and forwards each call."""
