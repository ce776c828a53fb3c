"""Image generation service: API, worker and webhook functions on Google Cloud."""
