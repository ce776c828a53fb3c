"""Google REST APIs (Firestore, Cloud Tasks, Cloud Storage) over httpx2, the HTTP client google-genai brings."""
