//! WebSocket (sans-IO).
