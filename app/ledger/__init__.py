"""The ledger: money, allocation, the double-entry journal and its verification.

Import from the modules (``app.ledger.service``, ``app.ledger.money``...): this package
imports nothing, so the catalogue's models can use ``Money`` without an import cycle.
"""
