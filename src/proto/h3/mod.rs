//! HTTP/3 subset (sans-IO).
