"""Google REST APIs (Firestore, Cloud Tasks) over httpx2, the HTTP client google-genai brings."""
