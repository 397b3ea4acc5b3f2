"""Entry points: the `callcast` command (:mod:`app.cli`) and the HTTP API (:mod:`app.api`). Nothing imports them."""
