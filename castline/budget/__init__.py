"""Prices and spend: every call's cost, computed exactly from its usage."""
