//! A labelled corpus per detector: positives, near-miss negatives and evasions, tested both ways.
//!
//! Each case is `("+id", text)`: `text` holds exactly one value that detector `id` must find and
//! nothing else; or `("-id", text)`: a near miss for `id` in which no detector may find anything.
//! Run with `--nocapture` to see precision and recall per detector.

use std::collections::BTreeMap;
use warden_dlp::{BUILTIN_DETECTORS, Engine, Rules};

const AWS_DOC_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const AWS_DOC_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const CORPUS: &[(&str, &str)] = &[
    // e-mail
    ("+email", "write to ann@example.com today"),
    ("+email", "cc: first.last+tag@sub.example.co.uk"),
    ("+email", "zero-width: ann\u{200B}@exa\u{200C}mple.com"),
    ("+email", "full-width: ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    ("-email", "ssh user@localhost"),
    ("-email", "follow @warden on the fediverse"),
    ("-email", "a@b.c is not an address"),
    // phone
    ("+phone", "call +1 415 555 2671 now"),
    ("+phone", "London office: +44 20 7946 0958"),
    ("+phone", "US: (415) 555-2671"),
    ("+phone", "US: 415-555-2671"),
    ("+phone", "Berlin +49 30 12345678"),
    ("+phone", "full-width ＋４４　２０　７９４６　０９５８"),
    ("-phone", "order number 4155552671"),
    ("-phone", "ISBN 978-3-16-148410-0"),
    ("-phone", "dial +1 555"),
    // payment cards
    ("+card", "visa 4111 1111 1111 1111 exp 12/29"),
    ("+card", "mc 5555-5555-5555-4444"),
    ("+card", "amex 378282246310005"),
    ("+card", "discover 6011.1111.1111.1117"),
    ("+card", "card 4012888888881881 2024"),
    ("+card", "zwsp 4111\u{200B}1111\u{200B}1111\u{200B}1111"),
    ("+card", "full-width ４１１１ １１１１ １１１１ １１１１"),
    (
        "+card",
        "soft hyphens 5555\u{00AD}5555\u{00AD}5555\u{00AD}4444",
    ),
    ("-card", "fails Luhn 4111 1111 1111 1112"),
    ("-card", "order 1234567812345678"),
    ("-card", "fails Luhn 5555555555554445"),
    ("-card", "too long 41111111111111111111111"),
    ("-card", "passes Luhn, first digit 9: 9111 1111 1111 1110"),
    ("-card", "passes Luhn, timestamp 1733116800124"),
    // IBAN
    ("+iban", "pay to DE89 3704 0044 0532 0130 00 please"),
    ("+iban", "GB82 WEST 1234 5698 7654 32"),
    ("+iban", "NL91ABNA0417164300"),
    ("+iban", "compact GB82WEST12345698765432"),
    ("+iban", "FR1420041010050500013M02606"),
    (
        "+iban",
        "tagged DE89\u{E0020}3704\u{E0020}0044\u{E0020}0532\u{E0020}0130\u{E0020}00",
    ),
    ("-iban", "wrong check DE88 3704 0044 0532 0130 00"),
    ("-iban", "wrong check GB82 WEST 1234 5698 7654 33"),
    ("-iban", "wrong check NL92ABNA0417164300"),
    // US SSN
    ("+ssn", "SSN 219-09-9988"),
    ("+ssn", "ssn: 536 22 1234"),
    ("+ssn", "full-width ５３６－２２－１２３４"),
    ("-ssn", "area 000: 000-12-3456"),
    ("-ssn", "area 666: 666-12-3456"),
    ("-ssn", "area 9xx: 912-34-5678"),
    ("-ssn", "group 00: 123-00-4567"),
    ("-ssn", "serial 0000: 123-45-0000"),
    // IPv4
    ("+ipv4", "host 192.168.1.20 is up"),
    ("+ipv4", "dns 8.8.8.8"),
    ("+ipv4", "from 10.0.0.1:8080"),
    ("-ipv4", "octet 256.1.1.1"),
    ("-ipv4", "version 1.2.3.4.5"),
    ("-ipv4", "semver v1.2.3"),
    ("-ipv4", "leading zero 01.2.3.4"),
    // AWS
    ("+aws_access_key", "key AKIAZ7VQ4XH2LMN3PQRS"),
    ("+aws_access_key", "ASIAY34FZKBOKMUTVV7A temporary"),
    ("+aws_access_key", "joined AKIA\u{200D}Z7VQ4XH2LMN3PQRS"),
    ("-aws_access_key", "docs use AKIAIOSFODNN7EXAMPLE"),
    ("-aws_access_key", "short AKIA1234"),
    ("-aws_access_key", "glued XAKIAZ7VQ4XH2LMN3PQRS"),
    (
        "+aws_secret_key",
        "aws_secret_access_key = WR7PAmpBFXlNPHcSke4R1J/dBi2ewQr8t4+lC4Lv",
    ),
    (
        "+aws_secret_key",
        "\"SecretAccessKey\": \"WR7PAmpBFXlNPHcSke4R1J/dBi2ewQr8t4+lC4Lv\"",
    ),
    (
        "-aws_secret_key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "-aws_secret_key",
        "aws_secret_access_key = <your-secret-key>",
    ),
    // GitHub, GitLab, Slack, Stripe
    (
        "+github_token",
        "token ghp_C3J27XDCG2LmlZGEONYlgCtjfIZ4SOcMz9CP",
    ),
    (
        "+github_token",
        "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",
    ),
    (
        "+github_token",
        "bidi ghp_C3J27XDCG2LmlZ\u{202E}GEONYlgCtjfIZ4SOcMz9CP",
    ),
    ("-github_token", "ghp_short"),
    (
        "-github_token",
        "one short ghp_C3J27XDCG2LmlZGEONYlgCtjfIZ4SOcMz9C",
    ),
    ("+gitlab_token", "GITLAB glpat-tva9AW7hipTgadDZFlRJ"),
    (
        "+gitlab_token",
        "{\"token\": \"glpat-Zx9vQ2mT7rLp4sKd8wBn\"}",
    ),
    ("-gitlab_token", "glpat-short"),
    (
        "+slack_token",
        "xoxb-2401234567-4012345678901-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "+slack_token",
        "SLACK xoxp-1234567890-0987654321-abcdefABCDEF",
    ),
    ("-slack_token", "xoxo-hugs-and-kisses"),
    (
        "+slack_webhook",
        "post to https://hooks.slack.com/services/T0A1B2C3D/B0E1F2G3H/AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "-slack_webhook",
        "see https://hooks.slack.com/services/ for docs",
    ),
    ("+stripe_key", "STRIPE sk_live_mCGmUXiAPyhzAnar3ZLt4bnl"),
    ("+stripe_key", "rk_test_z2MPKgcjnCqaXNv1syeefnLO"),
    (
        "-stripe_key",
        "publishable pk_live_mCGmUXiAPyhzAnar3ZLt4bnl",
    ),
    // OpenAI, Anthropic, Google
    (
        "+anthropic_key",
        "sk-ant-api03-FbVV6q9rXxtNDFyuzX9k1gnneGEYG1_LwiqD9jJBAciI05FhfwKVqlUr5Qrec8TNecj9iNOrjj5VfqRTk8j1d-bWWbjklAA",
    ),
    (
        "+anthropic_key",
        "ANTHROPIC_API_KEY=sk-ant-admin01-HG16JqtQy9235Nnt2j9IHrKFmAIhGaMybIcH6zIZKhFf",
    ),
    ("-anthropic_key", "prefix sk-ant- only"),
    (
        "+openai_key",
        "OPENAI sk-proj-oG1QX647kdNl9cDo-_GbVMszvR4-EPZGz3zBXCOArr-SfiJv",
    ),
    (
        "+openai_key",
        "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",
    ),
    ("-openai_key", "pip install sk-learn"),
    ("-openai_key", "ticket sk-1234"),
    (
        "+google_api_key",
        "maps AIza6ydIEsgo5nVjzz8Gwb8ewCISuYCl0Xq56za",
    ),
    (
        "+google_api_key",
        "https://maps.example/js?key=AIza6ydIEsgo5nVjzz8Gwb8ewCISuYCl0Xq56za&v=3",
    ),
    ("-google_api_key", "AIzaSyShort"),
    // private keys, JWT
    (
        "+private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nHqceytDbKPTF/n/pGz3cW0uABBrDSxOOyBymrEqlHXm31qzZcmzTUoRyj9nde9sy\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "+private_key",
        "x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY----- y",
    ),
    (
        "-private_key",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    ),
    ("-private_key", "-----BEGIN PRIVATE KEY----- (truncated)"),
    (
        "+jwt",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    (
        "+jwt",
        "split eyJhbGciOiJIUzI1NiJ9\u{200B}.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    ("-jwt", "header only eyJhbGciOiJIUzI1NiJ9"),
    // connection strings, secrets next to key words
    (
        "+connection_password",
        "DATABASE_URL=postgres://app:S3cr3tPass@db.internal:5432/app",
    ),
    (
        "+connection_password",
        "mongodb+srv://admin:hunter2@cluster0.example.net/",
    ),
    (
        "+connection_password",
        "Server=db;User Id=sa;Password=Pa55word!;",
    ),
    ("-connection_password", "https://example.com:8443/path"),
    ("-connection_password", "postgres://app@db/app"),
    (
        "-connection_password",
        "postgres://app:${DB_PASSWORD}@db/app",
    ),
    (
        "+secret_entropy",
        "\"client_secret\": \"HG16JqtQy9235Nnt2j9I\"",
    ),
    ("+secret_entropy", "API_KEY=HrKFmAIhGaMybIcH6zIZKhFf"),
    (
        "+secret_entropy",
        "auth_token: 'Ske7IDA69Z7zrpEFivB50756EHugmANb'",
    ),
    ("-secret_entropy", "token: \"YOUR_TOKEN_HERE_PLEASE\""),
    ("-secret_entropy", "password: changeme"),
    (
        "-secret_entropy",
        "secret_name = my-secret-configuration-name",
    ),
    ("-secret_entropy", "api_key = \"aaaaaaaaaaaaaaaaaaaaaaaa\""),
    ("-secret_entropy", "HG16JqtQy9235Nnt2j9I without a key word"),
];

fn engine() -> Engine {
    let mut rules = Rules::builtin([42; 32]);
    rules.allow = vec![AWS_DOC_ACCESS_KEY.into(), AWS_DOC_SECRET_KEY.into()];
    Engine::new(rules).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Default)]
struct Score {
    tp: u32,
    fp: u32,
    fn_: u32,
}

#[test]
fn corpus_precision_and_recall() {
    let engine = engine();
    let mut scores: BTreeMap<&str, Score> = BUILTIN_DETECTORS
        .iter()
        .map(|d| (*d, Score::default()))
        .collect();
    let mut failures = Vec::new();
    for (label, text) in CORPUS {
        let (positive, id) = label.split_at(1);
        assert!(scores.contains_key(id), "unknown detector in corpus: {id}");
        let expected = positive == "+";
        let found = engine.scan_text(text);
        let hit = found.iter().position(|f| expected && f.detector == id);
        if let Some(score) = scores.get_mut(id).filter(|_| expected) {
            if hit.is_some() {
                score.tp += 1;
            } else {
                score.fn_ += 1;
                failures.push(format!("missed {label}: {text:?} found {found:?}"));
            }
        }
        // Anything else found is a false positive, including a second match of `id`.
        for (_, f) in found.iter().enumerate().filter(|(k, _)| Some(*k) != hit) {
            let d = BUILTIN_DETECTORS
                .iter()
                .find(|d| **d == f.detector)
                .copied()
                .unwrap_or("?");
            scores.entry(d).or_default().fp += 1;
            failures.push(format!("false {} in {label}: {text:?}", f.detector));
        }
    }
    for (id, s) in &scores {
        let p = f64::from(s.tp) / f64::from((s.tp + s.fp).max(1));
        let r = f64::from(s.tp) / f64::from((s.tp + s.fn_).max(1));
        println!(
            "{id:>20}: precision {p:.2} recall {r:.2} ({}/{}/{})",
            s.tp, s.fp, s.fn_
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for id in BUILTIN_DETECTORS {
        let positives = CORPUS
            .iter()
            .filter(|(l, _)| l[1..] == **id && l.starts_with('+'))
            .count();
        let negatives = CORPUS
            .iter()
            .filter(|(l, _)| l[1..] == **id && l.starts_with('-'))
            .count();
        assert!(
            positives > 0 && negatives > 0,
            "{id} needs positives and near misses"
        );
    }
}

#[test]
fn masked_positives_scan_clean() {
    let engine = engine();
    for (label, text) in CORPUS.iter().filter(|(l, _)| l.starts_with('+')) {
        let mut value = serde_json::Value::String((*text).to_string());
        let outcome = engine.apply(&mut value);
        assert!(!outcome.findings.is_empty(), "{label}: {text:?}");
        let masked = value.as_str().unwrap_or_default();
        assert!(
            masked.contains(&format!("[{}", &label[1..])),
            "{label}: {masked:?}"
        );
        assert!(engine.scan_text(masked).is_empty(), "{label}: {masked:?}");
    }
}

#[test]
fn allowed_values_are_found_without_the_allow_list() {
    let engine = Engine::new(Rules::builtin([42; 32])).unwrap_or_else(|e| panic!("{e}"));
    let found = engine.scan_text(&format!("docs use {AWS_DOC_ACCESS_KEY}"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].detector, "aws_access_key");
}
