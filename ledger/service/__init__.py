"""Use cases over a store: the Ledger application, import, export and restore, publishing
(directory and tiled), keys."""
