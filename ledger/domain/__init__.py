"""Pure rules, no database and no I/O: the fund aggregate and its events, facts, policy, waterfall."""
