-- The example schema behind workflows/batch_results.yaml. Create it with:
--   flowrun workflows/batch_results_setup.yaml [--set database=data/batch_results.db]
-- Whatever submits batches inserts a `batches` row ('submitted') and one `requests` row per
-- custom_id ('pending'); the monitor fills in the results in short transactions and marks the
-- batch 'completed' with the last one. (This table is only the default of the monitor's
-- `result_sql` input: your own tables work too, docs/steps.md#store_batch_results.)
CREATE TABLE IF NOT EXISTS batches (
  id           TEXT PRIMARY KEY,                       -- msgbatch_...
  status       TEXT NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'completed')),
  submitted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  completed_at TEXT,
  counts       TEXT                                    -- JSON: results stored, by type
);

CREATE TABLE IF NOT EXISTS requests (
  custom_id     TEXT PRIMARY KEY,
  batch_id      TEXT NOT NULL REFERENCES batches (id),
  status        TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'succeeded', 'errored', 'canceled', 'expired')),
  output        TEXT,     -- succeeded: the message's text
  value         TEXT,     -- succeeded: that text parsed as JSON, when it is JSON
  stop_reason   TEXT,
  input_tokens  INTEGER,
  output_tokens INTEGER,
  error         TEXT,     -- errored: "type: message"
  updated_at    TEXT
);

CREATE INDEX IF NOT EXISTS requests_by_batch ON requests (batch_id);
CREATE INDEX IF NOT EXISTS batches_by_status ON batches (status);
