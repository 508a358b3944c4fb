//! The objects named by an S3 event notification, in the shapes it reaches a worker: S3's own
//! `{"Records": [{"s3": …}]}` (Lambda, or any S3-compatible store), wrapped in SQS messages (`body`) or SNS
//! notifications (`Sns.Message`, `Message`), EventBridge's `Object Created` events, or a JSON array of any of
//! these. Pure: text in, keys out.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{name}: not JSON: {source}")]
    Json {
        name: String,
        source: serde_json::Error,
    },
    #[error("{name}: {reason}")]
    Shape { name: String, reason: String },
}

/// One created object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventObject {
    pub bucket: String,
    /// The key, URL-decoded (`+` is a space).
    pub key: String,
}

/// What an event file holds: created objects, and events that are not creations (deletions, test events),
/// described for a log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Events {
    pub created: Vec<EventObject>,
    pub ignored: Vec<String>,
}

/// Parse the event text read from `name` (a file name or `-`, for messages).
pub fn parse(text: &str, name: &str) -> Result<Events, EventError> {
    let value: Value = serde_json::from_str(text).map_err(|source| EventError::Json {
        name: name.into(),
        source,
    })?;
    let mut events = Events::default();
    walk(&value, name, &mut events, 0)?;
    Ok(events)
}

/// S3 event keys are form-URL-encoded: `+` is a space, `%2B` a plus.
pub fn decode_key(key: &str) -> String {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn shape(name: &str, reason: impl Into<String>) -> EventError {
    EventError::Shape {
        name: name.into(),
        reason: reason.into(),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The object `{bucket: {name}, object: {key}}` of one event (S3's `s3` and EventBridge's `detail` share the
/// shape): created, or described under `event` as ignored. `Err` when the names are missing.
fn add_object(out: &mut Events, v: &Value, created: bool, event: &str) -> Result<(), ()> {
    let (Some(bucket), Some(key)) = (
        str_at(v, &["bucket", "name"]),
        str_at(v, &["object", "key"]),
    ) else {
        return Err(());
    };
    let key = decode_key(key);
    if created {
        out.created.push(EventObject {
            bucket: bucket.into(),
            key,
        });
    } else {
        out.ignored.push(format!("{event} {bucket}/{key}"));
    }
    Ok(())
}

fn walk(v: &Value, name: &str, out: &mut Events, depth: u32) -> Result<(), EventError> {
    // Envelopes nest at most a few deep (EventBridge -> SQS -> SNS -> S3); deeper is not an event.
    if depth > 8 {
        return Err(shape(name, "event envelopes nested too deep"));
    }
    // A message body or SNS message is itself JSON text.
    let inner = |text: &str, out: &mut Events| -> Result<(), EventError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| shape(name, format!("a wrapped message is not JSON: {e}")))?;
        walk(&v, name, out, depth + 1)
    };
    if let Some(items) = v.as_array() {
        return items.iter().try_for_each(|i| walk(i, name, out, depth + 1));
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        for r in records {
            if let Some(s3) = r.get("s3") {
                let event = r.get("eventName").and_then(Value::as_str).unwrap_or("");
                // S3 says `ObjectCreated:Put`; MinIO and others `s3:ObjectCreated:Put`.
                let created = event.trim_start_matches("s3:").starts_with("ObjectCreated");
                add_object(out, s3, created, event).map_err(|()| {
                    shape(
                        name,
                        "an S3 record without s3.bucket.name and s3.object.key",
                    )
                })?;
            } else if let Some(body) = r.get("body").and_then(Value::as_str) {
                inner(body, out)?; // SQS
            } else if let Some(msg) = str_at(r, &["Sns", "Message"]) {
                inner(msg, out)?; // SNS -> Lambda
            } else {
                return Err(shape(
                    name,
                    "a record that is neither an S3 event, an SQS message nor an SNS notification",
                ));
            }
        }
        return Ok(());
    }
    if v.get("source").and_then(Value::as_str) == Some("aws.s3") {
        let kind = v.get("detail-type").and_then(Value::as_str).unwrap_or("");
        let detail = v.get("detail").unwrap_or(&Value::Null);
        return add_object(out, detail, kind == "Object Created", kind).map_err(|()| {
            shape(
                name,
                "an EventBridge S3 event without detail.bucket.name and detail.object.key",
            )
        });
    }
    if let Some(msg) = v.get("Message").and_then(Value::as_str) {
        return inner(msg, out); // an SNS notification delivered to SQS
    }
    if let Some(body) = v.get("Body").and_then(Value::as_str) {
        return inner(body, out); // an SQS message as ReceiveMessage returns it
    }
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        out.ignored.push("s3:TestEvent".into());
        return Ok(());
    }
    Err(shape(
        name,
        "not an S3 event notification (expected Records[].s3, an SQS/SNS envelope or an EventBridge S3 event)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // S3's documented notification (event version 2.1), as Lambda receives it.
    const S3_PUT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
      "eventTime":"2026-11-25T12:00:00.000Z","eventName":"ObjectCreated:Put",
      "userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},"requestParameters":{"sourceIPAddress":"203.0.113.7"},
      "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
      "s3":{"s3SchemaVersion":"1.0","configurationId":"masters","bucket":{"name":"museum-masters",
        "ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::museum-masters"},
        "object":{"key":"source/IMG+0084+%28copy%29.JPG","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
          "sequencer":"0055AED6DCD90281E5"}}},
     {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete",
      "s3":{"bucket":{"name":"museum-masters"},"object":{"key":"old.jpg","sequencer":"0055AED6DCD90281E6"}}}]}"#;

    #[test]
    fn s3_notification() {
        let e = parse(S3_PUT, "event.json").unwrap();
        assert_eq!(
            e.created,
            [EventObject {
                bucket: "museum-masters".into(),
                key: "source/IMG 0084 (copy).JPG".into()
            }]
        );
        assert_eq!(e.ignored, ["ObjectRemoved:Delete museum-masters/old.jpg"]);
    }

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_key("a+b.jpg"), "a b.jpg");
        assert_eq!(decode_key("c%2B%2B.jpg"), "c++.jpg");
        assert_eq!(decode_key("dir%2Fx%3A1.jpg"), "dir/x:1.jpg");
        assert_eq!(decode_key("caf%C3%A9.jpg"), "café.jpg");
        assert_eq!(decode_key("a&b=c.jpg"), "a&b=c.jpg");
    }

    #[test]
    fn sqs_and_sns_envelopes() {
        let body = serde_json::to_string(&serde_json::from_str::<Value>(S3_PUT).unwrap()).unwrap();
        let sqs = serde_json::json!({"Records": [{"messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a", "body": body, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:masters", "awsRegion": "us-east-1"}]});
        let e = parse(&sqs.to_string(), "-").unwrap();
        assert_eq!(e.created.len(), 1);
        assert_eq!(e.created[0].key, "source/IMG 0084 (copy).JPG");

        let sns = serde_json::json!({"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:masters", "Message": body});
        let via_sqs =
            serde_json::json!({"Records": [{"body": sns.to_string(), "eventSource": "aws:sqs"}]});
        assert_eq!(parse(&via_sqs.to_string(), "-").unwrap().created.len(), 1);
        let lambda_sns = serde_json::json!({"Records": [{"EventSource": "aws:sns",
            "Sns": {"Type": "Notification", "Message": body}}]});
        assert_eq!(
            parse(&lambda_sns.to_string(), "-").unwrap().created.len(),
            1
        );
        let batch = serde_json::json!([{"Body": body}, {"Body": body}]);
        assert_eq!(parse(&batch.to_string(), "-").unwrap().created.len(), 2);
    }

    #[test]
    fn eventbridge() {
        let ev = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created",
          "source":"aws.s3","account":"123456789012","time":"2026-11-25T12:00:00Z","region":"us-east-1",
          "resources":["arn:aws:s3:::museum-masters"],"detail":{"version":"0","bucket":{"name":"museum-masters"},
          "object":{"key":"photos/a+b.jpg","size":5,"etag":"b1946ac92492d2347c6235b4d2611184","sequencer":"00617F08299329D189"},
          "request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","reason":"PutObject"}}"#;
        let e = parse(ev, "ev.json").unwrap();
        assert_eq!(e.created[0].bucket, "museum-masters");
        assert_eq!(e.created[0].key, "photos/a b.jpg");
        let deleted = ev.replace("Object Created", "Object Deleted");
        assert!(parse(&deleted, "ev.json").unwrap().created.is_empty());
    }

    #[test]
    fn test_events_and_bad_shapes() {
        let t = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-25T12:00:00.000Z",
          "Bucket":"museum-masters","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        let e = parse(t, "t.json").unwrap();
        assert!(e.created.is_empty());
        assert_eq!(e.ignored, ["s3:TestEvent"]);
        let err = parse("{\"Records\": [", "broken.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("broken.json") && err.contains("line 1"),
            "{err}"
        );
        let err = parse(r#"{"hello": 1}"#, "x.json").unwrap_err().to_string();
        assert!(err.contains("not an S3 event"), "{err}");
        let err = parse(r#"{"Records": [{"s3": {}}]}"#, "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3.object.key"), "{err}");
    }
}
