"""Mapping by example: record examples, train a model in-process, let it play (see the README's
"Teach it by example")."""
