"""Talking to Aircall: the API client (requests and downloads), the shared rate-limit budget, poll timings."""
