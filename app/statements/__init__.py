"""Artists' statements per period: lines that reconcile to the ledger, in HTML, CSV and PDF."""
