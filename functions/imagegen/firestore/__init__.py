"""Firestore through its REST API: documents, queries, aggregations and transactions.

Only the listener of ``GET /api/images/events`` (a gRPC ``Listen`` stream,
``job_store.watch_job``) still uses google-cloud-firestore.
"""
