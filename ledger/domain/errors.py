"""The ledger's errors, one hierarchy. Every message is one line, ``"field: reason"``.

DomainError: input that the fund's rules refuse (nothing is recorded); the CLI exits 2.
  FactError         a fact record is malformed (schema, unknown asset or type)
  LiquidationError  a liquidation's terms cannot be settled as given (waterfall)
  PolicyError       a policy document is malformed
  FundRuleError     a command would break one of the fund's rules
Storage and service errors (ledger.store.busy, ledger.store.dburl, ledger.service.*)
name their layer; the CLI maps each to one exit code in ledger.cli.options.
"""


class DomainError(ValueError):
    """Input the fund's rules refuse; the message is one line, ``"field: reason"``."""


class FactError(DomainError):
    """A fact is malformed; the message is ``"field: reason"``."""


class LiquidationError(DomainError):
    """A liquidation fact's terms are malformed for the waterfall; ``"field: reason"``."""


class PolicyError(DomainError):
    """A policy document is malformed; the message is one line, ``"field: reason"``."""


class FundRuleError(DomainError):
    """A command would break one of the fund's rules; the message names the field."""
