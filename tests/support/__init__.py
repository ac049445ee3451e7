"""Test support that is not a fixture: servers standing in for systems beyond our network."""
