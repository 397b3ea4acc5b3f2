"""Business analyses at chosen moments (pure functions, no Prefect): customer segments, campaign
effectiveness and sales KPIs, with their charts and self-contained HTML reports."""
