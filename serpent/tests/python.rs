//! rmi-serpent against Python's own serpent: the files `fixtures/make.py` wrote with it, and,
//! with a Python that has serpent installed, a round trip through the real thing.

use std::io::Write;
use std::process::{Command, Stdio};

use rmi_serpent::Value;
use serde::{Deserialize, Serialize};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/{name}.serpent",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn s(text: &str) -> Value {
    Value::from(text)
}

/// Each fixture, the value it holds, and whether rmi-serpent writes the same bytes for it.
fn cases() -> Vec<(&'static str, Value, bool)> {
    use Value::*;
    vec![
        (
            "scalars",
            List(vec![
                None,
                Bool(true),
                Bool(false),
                Int(0),
                Int(-1),
                Int(1 << 100),
                Float(1.5),
                Float(0.1),
                Float(1e16),
                Float(1e-5),
                Float(-2.5e-7),
                Float(f64::INFINITY),
                Float(f64::NEG_INFINITY),
                s("text"),
                s("it's"),
                s("both ' and \""),
                s("a\\b\n\t\r"),
                s("é€😀"),
                s("\u{0}\u{7f}\u{a0}"),
            ]),
            true,
        ),
        (
            "tuples",
            List(vec![
                Tuple(vec![]),
                Tuple(vec![Int(1)]),
                Tuple(vec![Int(1), s("a"), Tuple(vec![Int(2)])]),
            ]),
            true,
        ),
        (
            "dict",
            Dict(vec![
                (s("name"), s("x")),
                (s("n"), Int(3)),
                (
                    s("nested"),
                    Dict(vec![(s("k"), List(vec![Int(1), Int(2)]))]),
                ),
                (Int(7), None),
            ]),
            true,
        ),
        ("set_of_one", Set(vec![Int(1)]), true),
        ("empty_set", Tuple(vec![]), true),
        ("complex", Complex(1.5, -2.0), true),
        (
            "exception",
            Dict(vec![
                (s("__class__"), s("builtins.ValueError")),
                (s("__exception__"), Bool(true)),
                (s("args"), Tuple(vec![s("bad"), Int(3)])),
                (s("attributes"), Dict(vec![])),
            ]),
            true,
        ),
    ]
}

#[test]
fn pythons_output_reads_as_the_value_and_ours_is_the_same_bytes() {
    for (name, expected, same_bytes) in cases() {
        let text = fixture(name);
        let read: Value = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read, expected, "{name}");
        if same_bytes {
            assert_eq!(rmi_serpent::to_string(&expected).unwrap(), text, "{name}");
        }
    }
}

#[test]
fn pythons_bytes_and_nan_read_as_bytes_and_nan() {
    let bytes: serde_bytes::ByteBuf = rmi_serpent::from_str(&fixture("bytes")).unwrap();
    assert_eq!(bytes.as_ref(), b"\x00\x01hello");
    assert_eq!(
        rmi_serpent::to_string(&serde_bytes::Bytes::new(b"\x00\x01hello")).unwrap(),
        fixture("bytes")
    );
    let nan: f64 = rmi_serpent::from_str(&fixture("nan")).unwrap();
    assert!(nan.is_nan());
    assert_eq!(rmi_serpent::to_string(&f64::NAN).unwrap(), fixture("nan"));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Point,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Pair(i8, String),
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Everything {
    name: String,
    data: serde_bytes::ByteBuf,
    shapes: Vec<Shape>,
    pair: (u64, Option<i64>),
    one: (bool,),
    big: i128,
    ratio: f32,
    map: std::collections::BTreeMap<String, Vec<u16>>,
    nothing: (),
    letter: char,
}

fn everything() -> Everything {
    Everything {
        name: "Ünïcode 'quoted' \"too\"\n".into(),
        data: serde_bytes::ByteBuf::from(vec![0, 1, 2, 255]),
        shapes: vec![
            Shape::Point,
            Shape::Circle(0.5),
            Shape::Rect { w: 3, h: 4 },
            Shape::Pair(-1, "x".into()),
        ],
        pair: (u64::MAX, None),
        one: (true,),
        big: -(1 << 100),
        ratio: 0.1,
        map: [("a".to_owned(), vec![1, 2]), ("b".to_owned(), vec![])].into(),
        nothing: (),
        letter: 'λ',
    }
}

#[test]
fn every_kind_of_rust_value_round_trips() {
    let text = rmi_serpent::to_string(&everything()).unwrap();
    assert_eq!(
        rmi_serpent::from_str::<Everything>(&text).unwrap(),
        everything(),
        "{text}"
    );
}

/// The Python that `RMI_TEST_PYTHON` names (`python3` if unset).
fn python() -> String {
    std::env::var("RMI_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `script` in that Python with `input` on its stdin; its stdout.
fn run_python(script: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}\nInstall serpent (`pip install serpent`; .ci/run makes a virtual environment with it) \
         and point RMI_TEST_PYTHON at that Python.",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
#[ignore = "needs Python's serpent: pip install serpent (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn python_reads_what_we_write_and_we_read_what_it_writes_back() {
    let script = "import sys, serpent\n\
                  v = serpent.loads(sys.stdin.buffer.read())\n\
                  sys.stdout.buffer.write(serpent.dumps(v, module_in_classname=True))";
    let ours = rmi_serpent::to_vec(&everything()).unwrap();
    let back = run_python(script, &ours);
    assert_eq!(
        rmi_serpent::from_slice::<Everything>(&back).unwrap(),
        everything()
    );
    // Python writes the value it read as we write that value, byte for byte. (Python read the
    // bytes as the plain dict serpent writes them as, which it writes without spaces.)
    let as_python_saw_it: Value = std::str::from_utf8(&ours).unwrap().parse().unwrap();
    assert_eq!(
        String::from_utf8(back).unwrap(),
        rmi_serpent::to_string(&as_python_saw_it).unwrap()
    );
}

#[test]
#[ignore = "needs Python's serpent: pip install serpent (.ci/run makes a venv and sets RMI_TEST_PYTHON)"]
fn the_fixtures_are_what_this_pythons_serpent_writes() {
    let make = format!("{}/tests/fixtures/make.py", env!("CARGO_MANIFEST_DIR"));
    let dir = tempdir();
    let copy = dir.join("make.py");
    std::fs::copy(&make, &copy).unwrap();
    run_python(
        &format!("import runpy; runpy.run_path({:?})", copy.to_str().unwrap()),
        b"",
    );
    for (name, ..) in cases() {
        let fresh = std::fs::read_to_string(dir.join(format!("{name}.serpent"))).unwrap();
        assert_eq!(
            fresh,
            fixture(name),
            "{name}: serpent now writes it differently"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rmi-serpent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
