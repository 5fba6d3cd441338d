"""The SQLAlchemy metadata that every ledger table (projections, log tiles, snapshots) joins.

Tables live in the same database as the event store, so one transaction can cover both.
"""

from sqlalchemy import MetaData

metadata = MetaData()
