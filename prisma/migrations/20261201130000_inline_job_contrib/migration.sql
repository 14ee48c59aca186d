-- simbatch_job_contrib was declared IMMUTABLE while its body calls to_char(timestamp, text),
-- which is only STABLE. Postgres never inlines a function whose declared volatility is
-- stricter than its body's, so the counters' triggers called it as a function once per
-- changed row, and twice per row of an UPDATE (old and new): about 14 us per call here,
-- against under 2 us for the same expression inlined. A job's admission, release, claim
-- and end make seven such calls. Declared STABLE (what its body is), it is inlined into the
-- triggers' queries; what it computes does not change.
ALTER FUNCTION simbatch_job_contrib(simulation_jobs, INTEGER) STABLE;
