"""The encrypted object vault: masters, renditions and downloads, sealed per object.

Other areas call ``app.vault.service``; the object format is described in ``FORMAT.md``.
"""
