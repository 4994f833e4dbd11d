"""The dashboard and JSON API, and the routes that serve the local store's signed links."""
