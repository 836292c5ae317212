//! The README's Node.js and Python unpack snippets, run with the machine's `node` and `python3`
//! against tokens this crate packs, and against strings it would never pack: each must give
//! what `PackedToken::unpack` gives (the same three parts, or a refusal for the same reason).
//!
//! The snippets are read from README.md itself (after their `<!-- snippet: ... -->` markers), so
//! the text a skill developer copies is the text tested.

use std::io::Write;
use std::process::{Command, Stdio};

use account_link_bridge::pack::{PackFormat, UnpackError};
use account_link_bridge::PackedToken;
use serde_json::{json, Value};

/// The code block that follows `<!-- snippet: NAME -->` in README.md.
fn readme_snippet(name: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let marker = format!("<!-- snippet: {name} -->");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker}"))..];
    let fence = after.find("```").expect("a code block after the marker");
    let body = &after[fence..];
    let start = body.find('\n').expect("a fence line") + 1;
    let end = body[start..].find("\n```").expect("a closing fence") + start;
    body[start..end].to_string()
}

/// Runs `program` with `script` as its program text and `inputs` as JSON on stdin; returns the
/// JSON it prints.
fn run(program: &str, args: &[&str], script: &str, inputs: &Value) -> Value {
    let mut child = Command::new(program)
        .args(args)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed to run the README's snippet: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(inputs.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{program} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What the snippets must answer for `packed`: the crate's own unpacking, with each refusal
/// named by the words the snippets' messages use.
fn expected(packed: &str) -> Value {
    match PackedToken::unpack(packed) {
        Ok(token) => {
            json!({"ok": [token.access_token(), token.instance_url(), token.api_instance_url()]})
        }
        Err(UnpackError::TooLong { .. }) => json!({"error": "too long"}),
        Err(UnpackError::TrailingEmptyField) => json!({"error": "ends with an empty field"}),
        Err(UnpackError::EmptyAccessToken) => json!({"error": "no access token"}),
        Err(UnpackError::TooManyParts { .. }) => json!({"error": "more parts than fields"}),
    }
}

/// Reduces a snippet's error message to the words `expected` uses.
fn reason(message: &str) -> &'static str {
    [
        "too long",
        "ends with an empty field",
        "no access token",
        "more parts than fields",
    ]
    .into_iter()
    .find(|words| message.contains(words))
    .unwrap_or("an unknown error")
}

/// A small deterministic generator (xorshift), so a failure names a reproducible input.
struct Strings(u64);

impl Strings {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A string of up to `max` characters from an alphabet with the separator, URL characters,
    /// Salesforce's `!` and multi-byte characters.
    fn string(&mut self, max: u64) -> String {
        const ALPHABET: &[char] = &['a', 'Z', '0', '!', '.', '_', ' ', '/', ':', 'é', '€', '|'];
        let len = self.next() % (max + 1);
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize])
            .collect()
    }
}

/// The inputs: tokens the crate packs (with and without each field, multi-byte, at the length
/// limit), the malformed shapes it refuses, and random strings of the same alphabet.
fn inputs() -> Vec<String> {
    let format = PackFormat::salesforce();
    let mut inputs = Vec::new();
    let tokens = [
        "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs",
        "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3OTk5OTk5OTl9.c2ln",
        "tök€n",
        "a",
    ];
    let instances = [
        None,
        Some("https://acme.my.salesforce.com"),
        Some("https://é.example"),
    ];
    let apis = [None, Some("https://api.salesforce.com")];
    for token in tokens {
        for instance in instances {
            for api in apis {
                let packed = format
                    .pack(token, |name| match name {
                        "instance_url" => instance,
                        "api_instance_url" => api,
                        _ => None,
                    })
                    .expect("packable");
                inputs.push(packed);
            }
        }
    }
    // The longest token the crate packs, and one byte more, in multi-byte characters.
    inputs.push(format!("{} https://a", "é".repeat((4096 - 10) / 2)));
    inputs.push(format!("{}x https://a", "é".repeat((4096 - 10) / 2)));
    for malformed in [
        "",
        " ",
        "a ",
        " a",
        "a b c d",
        "a  ",
        "a  b",
        "a b  ",
        "€ € € €",
    ] {
        inputs.push(malformed.to_string());
    }
    let mut strings = Strings(0x9e37_79b9_7f4a_7c15);
    for _ in 0..400 {
        inputs.push(strings.string(12));
    }
    inputs
}

fn check_snippet(program: &str, args: &[&str], script: String) {
    let inputs = inputs();
    let answers = run(program, args, &script, &json!(inputs));
    let answers = answers.as_array().expect("an array of answers");
    assert_eq!(answers.len(), inputs.len());
    let mut accepted = 0;
    for (input, answer) in inputs.iter().zip(answers) {
        let answer = match answer.get("error").and_then(Value::as_str) {
            Some(message) => json!({"error": reason(message)}),
            None => answer.clone(),
        };
        assert_eq!(
            answer,
            expected(input),
            "{program} and the crate disagree on {input:?}"
        );
        accepted += usize::from(answer.get("ok").is_some());
    }
    // Both kinds of answer were exercised, so agreement means something.
    assert!(
        accepted > 30 && accepted < inputs.len() - 30,
        "{accepted} accepted"
    );
}

#[test]
fn the_readmes_node_snippet_unpacks_exactly_what_the_crate_packs() {
    let script = readme_snippet("unpack-node")
        + r#"
const inputs = JSON.parse(require("fs").readFileSync(0, "utf8"));
const answers = inputs.map((packed) => {
  try {
    const t = unpackToken(packed);
    return { ok: [t.accessToken, t.instanceUrl, t.apiInstanceUrl] };
  } catch (e) {
    return { error: e.message };
  }
});
process.stdout.write(JSON.stringify(answers));
"#;
    check_snippet("node", &["-e"], script);
}

#[test]
fn the_readmes_python_snippet_unpacks_exactly_what_the_crate_packs() {
    let script = readme_snippet("unpack-python")
        + r#"
import json, sys
answers = []
for packed in json.load(sys.stdin):
    try:
        t = unpack_token(packed)
        answers.append({"ok": [t["access_token"], t["instance_url"], t["api_instance_url"]]})
    except ValueError as e:
        answers.append({"error": str(e)})
print(json.dumps(answers))
"#;
    check_snippet("python3", &["-c"], script);
}
