//! Properties over arbitrary values and hostile text.

use proptest::prelude::*;
use rmi_serpent::Value;

/// Values that read back as they are written: no NaN (written as a dict), no bytes (written
/// as serpent's base64 dict), no empty set (written as `()`, as serpent does), no `i128::MIN`.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        (i128::MIN + 1..=i128::MAX).prop_map(Value::Int),
        any::<f64>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(Value::Float),
        (-1e300..1e300f64, -1e300..1e300f64).prop_map(|(re, im)| Value::Complex(re, im)),
        any::<String>().prop_map(Value::Str),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            prop::collection::vec(inner.clone(), 1..8).prop_map(Value::Set),
            prop::collection::vec((any::<String>().prop_map(Value::Str), inner), 0..8)
                .prop_map(Value::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn what_is_written_reads_back(v in value()) {
        let text = rmi_serpent::to_string(&v).unwrap();
        prop_assert_eq!(text.parse::<Value>().unwrap(), v, "{}", text);
    }

    #[test]
    fn any_text_is_read_or_refused_without_panicking(text in any::<String>()) {
        let _ = text.parse::<Value>();
        let _ = rmi_serpent::from_slice::<serde_json::Value>(text.as_bytes());
    }

    #[test]
    fn damaged_documents_are_read_or_refused_without_panicking(
        v in value(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = rmi_serpent::to_vec(&v).unwrap();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = rmi_serpent::from_slice::<Value>(&bytes);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for open in ["[", "(", "{", "{1:"] {
        let text = open.repeat(100_000);
        let err = text.parse::<Value>().unwrap_err();
        assert!(
            matches!(err, rmi_serpent::Error::TooDeep { .. }),
            "{open}: {err}"
        );
        assert!(err.to_string().contains("deeper than 128"), "{err}");
    }
}
