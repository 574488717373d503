"""Deployment helpers. The deployments themselves are declared in ../prefect.yaml."""
