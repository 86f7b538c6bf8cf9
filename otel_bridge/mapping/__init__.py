"""Events to spans: the lifecycle table, pure attribute functions, ids, pricing."""
