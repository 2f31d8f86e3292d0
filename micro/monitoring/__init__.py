"""Monitoring: the `micro dash` terminal dashboard and `micro health`, over the services' files."""
