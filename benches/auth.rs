//! Authentication benchmarks: what a shard pays per Hello or API request
//! (verifying an access token, valid or forged), what the login path pays
//! on a worker (signing, argon2id with the default parameters) and what a
//! refresh pays (hashing the presented token).
//!
//! Tokens carry realistic claims: a real account id, a 12-character
//! nickname, a `jti`. `cargo bench --bench auth`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ludus::services::auth::{
    token_hash, AccessClaims, JwtKeys, PasswordHasher, RefreshSecret, TokenError,
};

const NOW_S: i64 = 1_763_830_512;

/// Two keys, as during a rotation: tokens are signed by the first.
fn keys() -> JwtKeys {
    JwtKeys::from_config(
        "k2:2b6f1c0e9d8a7f6e5d4c3b2a19080706f5e4d3c2b1a0,\
         k1:0123456789abcdef0123456789abcdef0123456789",
    )
    .expect("valid JWT_SECRET")
}

fn claims() -> AccessClaims {
    let mut claims = AccessClaims::new(4_611_686_018_427_388_321, "user", "NebulaFox_42", NOW_S);
    claims.jti = Some("9f2c4e1a7b3d".into());
    claims
}

fn bench_jwt(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt");
    group.throughput(Throughput::Elements(1));
    let keys = keys();
    let claims = claims();
    let token = keys.sign(&claims);
    assert_eq!(keys.verify(&token, NOW_S + 60).unwrap(), claims);
    group.bench_function("verify", |b| b.iter(|| keys.verify(black_box(&token), NOW_S + 60)));
    // A forged token: one bit of the tag flipped, so the work is all done
    // up to the constant-time comparison, which fails.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(keys.verify(&forged, NOW_S + 60), Err(TokenError::BadSignature));
    group.bench_function("verify_bad_signature", |b| {
        b.iter(|| keys.verify(black_box(&forged), NOW_S + 60))
    });
    group.bench_function("sign", |b| b.iter(|| keys.sign(black_box(&claims))));
    group.finish();
}

fn bench_password(c: &mut Criterion) {
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    let hasher = PasswordHasher::default();
    group.bench_function("argon2id_hash_default", |b| {
        b.iter(|| hasher.hash(black_box("correct horse battery staple")).unwrap())
    });
    group.finish();
}

fn bench_refresh(c: &mut Criterion) {
    let mut group = c.benchmark_group("refresh");
    group.throughput(Throughput::Elements(1));
    let secret = RefreshSecret::generate();
    group.bench_function("token_hash", |b| b.iter(|| token_hash(black_box(secret.as_str()))));
    group.bench_function("parse+hash", |b| {
        b.iter(|| RefreshSecret::parse(black_box(secret.as_str())).unwrap().hash())
    });
    group.finish();
}

criterion_group! {
    name = auth;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = bench_jwt, bench_password, bench_refresh
}
criterion_main!(auth);
