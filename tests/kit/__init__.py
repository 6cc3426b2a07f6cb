"""The shared test kit: feed servers, an SMTP sink, slow receivers and daemon harnesses, used across tests/."""
