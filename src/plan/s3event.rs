//! The objects named by an S3 event notification, in the shapes it reaches a worker: S3's own
//! `{"Records": [{"s3": …}]}` (Lambda, or any S3-compatible store), wrapped in SQS messages (`body`) or SNS
//! notifications (`Sns.Message`, `Message`), EventBridge's `Object Created` events, or a JSON array of any of
//! these. The same for the other clouds: Google Cloud Storage's Pub/Sub notifications (a push delivery or a
//! pulled message) and Eventarc's CloudEvents, and Azure Event Grid's blob events (Event Grid or CloudEvents
//! schema). Pure: text in, keys out.

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
    push(out, created, event, bucket, decode_key(key));
    Ok(())
}

/// A created object, or one described under `event` as ignored.
fn push(out: &mut Events, created: bool, event: &str, bucket: &str, key: String) {
    if created {
        out.created.push(EventObject {
            bucket: bucket.into(),
            key,
        });
    } else {
        out.ignored.push(format!("{event} {bucket}/{key}"));
    }
}

/// A Google Cloud Storage notification: a Pub/Sub message (its attributes name the object; keys are not
/// encoded), or an Eventarc CloudEvent (`google.cloud.storage.object.v1.*`, the object in `data`). `None`
/// when `v` is neither.
fn gcs_event(v: &Value, name: &str, out: &mut Events) -> Option<Result<(), EventError>> {
    // A push subscription delivers `{"message": …, "subscription": …}`; a pull returns the message itself.
    let message = v.get("message").unwrap_or(v);
    if let Some(attributes) = message
        .get("attributes")
        .filter(|a| a.get("bucketId").is_some())
    {
        let event = str_at(attributes, &["eventType"]).unwrap_or("");
        return Some(match (str_at(attributes, &["bucketId"]), str_at(attributes, &["objectId"])) {
            (Some(bucket), Some(key)) => {
                push(out, event == "OBJECT_FINALIZE", event, bucket, key.into());
                Ok(())
            }
            _ => Err(shape(
                name,
                "a Cloud Storage Pub/Sub message without attributes.bucketId and attributes.objectId",
            )),
        });
    }
    let kind = v.get("type").and_then(Value::as_str)?;
    if !kind.starts_with("google.cloud.storage.object.v1.") {
        return None;
    }
    Some(
        match (str_at(v, &["data", "bucket"]), str_at(v, &["data", "name"])) {
            (Some(bucket), Some(key)) => {
                let created = kind == "google.cloud.storage.object.v1.finalized";
                push(out, created, kind, bucket, key.into());
                Ok(())
            }
            _ => Err(shape(
                name,
                "a Cloud Storage CloudEvent without data.bucket and data.name",
            )),
        },
    )
}

/// An Azure Event Grid event (`eventType` in Event Grid's schema, `type` in the CloudEvents one): a blob
/// event names its container and blob in `subject`, `/blobServices/default/containers/C/blobs/KEY`. `None`
/// when `v` is not an Event Grid event.
fn azure_event(v: &Value, name: &str, out: &mut Events) -> Option<Result<(), EventError>> {
    let kind = v
        .get("eventType")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)?;
    if !kind.starts_with("Microsoft.") {
        return None;
    }
    if !kind.starts_with("Microsoft.Storage.Blob") {
        // The subscription's validation handshake, and events of other services.
        out.ignored.push(kind.to_string());
        return Some(Ok(()));
    }
    let blob = str_at(v, &["subject"])
        .and_then(|s| s.strip_prefix("/blobServices/default/containers/"))
        .and_then(|s| s.split_once("/blobs/"))
        .filter(|(container, key)| !container.is_empty() && !key.is_empty());
    Some(match blob {
        Some((container, key)) => {
            let created = kind == "Microsoft.Storage.BlobCreated";
            push(out, created, kind, container, key.into());
            Ok(())
        }
        None => Err(shape(
            name,
            "an Azure blob event whose subject is not /blobServices/default/containers/CONTAINER/blobs/NAME",
        )),
    })
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
    if let Some(done) = gcs_event(v, name, out).or_else(|| azure_event(v, name, out)) {
        return done;
    }
    Err(shape(
        name,
        "not an object storage event (expected Records[].s3, an SQS/SNS envelope, an EventBridge S3 event, a \
         Cloud Storage Pub/Sub message or CloudEvent, or an Azure Event Grid blob event)",
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
        assert!(err.contains("not an object storage event"), "{err}");
        let err = parse(r#"{"Records": [{"s3": {}}]}"#, "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3.object.key"), "{err}");
    }

    // Cloud Storage's documented Pub/Sub notification (JSON_API_V1 payload), as a push subscription delivers it.
    const GCS_PUSH: &str = r#"{"message":{"attributes":{"bucketId":"museum-masters","eventTime":"2026-11-25T12:00:00.000000Z",
      "eventType":"OBJECT_FINALIZE","notificationConfig":"projects/_/buckets/museum-masters/notificationConfigs/1",
      "objectGeneration":"1764072000000000","objectId":"source/IMG 0084+1.JPG","payloadFormat":"JSON_API_V1"},
      "data":"eyJraW5kIjoic3RvcmFnZSNvYmplY3QifQ==","messageId":"1234567890","publishTime":"2026-11-25T12:00:00.1Z"},
      "subscription":"projects/museum/subscriptions/masters"}"#;

    #[test]
    fn cloud_storage_pubsub_and_cloudevents() {
        let e = parse(GCS_PUSH, "gcs.json").unwrap();
        assert_eq!(
            e.created,
            [EventObject {
                bucket: "museum-masters".into(),
                key: "source/IMG 0084+1.JPG".into()
            }],
            "Pub/Sub attributes are not URL-encoded"
        );
        let pulled: Value = serde_json::from_str(GCS_PUSH).unwrap();
        let pulled = serde_json::json!([pulled["message"]]);
        assert_eq!(parse(&pulled.to_string(), "-").unwrap().created.len(), 1);
        let deleted = GCS_PUSH.replace("OBJECT_FINALIZE", "OBJECT_DELETE");
        let e = parse(&deleted, "gcs.json").unwrap();
        assert!(e.created.is_empty());
        assert_eq!(
            e.ignored,
            ["OBJECT_DELETE museum-masters/source/IMG 0084+1.JPG"]
        );

        let cloudevent = r#"{"specversion":"1.0","id":"1234","type":"google.cloud.storage.object.v1.finalized",
          "source":"//storage.googleapis.com/projects/_/buckets/museum-masters","subject":"objects/a b.jpg",
          "time":"2026-11-25T12:00:00Z","data":{"bucket":"museum-masters","name":"a b.jpg","size":"5"}}"#;
        let e = parse(cloudevent, "ce.json").unwrap();
        assert_eq!(e.created[0].key, "a b.jpg");
        let archived = cloudevent.replace("v1.finalized", "v1.archived");
        assert!(parse(&archived, "ce.json").unwrap().created.is_empty());
        let err = parse(r#"{"message":{"attributes":{"bucketId":"b"}}}"#, "x.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("attributes.objectId"), "{err}");
    }

    // Event Grid's documented Microsoft.Storage.BlobCreated event, as a webhook receives it (an array).
    const AZURE_CREATED: &str = r#"[{"topic":"/subscriptions/0000/resourceGroups/museum/providers/Microsoft.Storage/storageAccounts/museum",
      "subject":"/blobServices/default/containers/masters/blobs/source/IMG 0084.JPG",
      "eventType":"Microsoft.Storage.BlobCreated","eventTime":"2026-11-25T12:00:00.0Z","id":"831e1650-001e-001b-66ab-eeb76e069631",
      "data":{"api":"PutBlockList","clientRequestId":"6d79dbfb-0e37-4fc4-981f-442c9ca65760","eTag":"0x8D4BCC2E4835CD0",
        "contentType":"image/jpeg","contentLength":524288,"blobType":"BlockBlob",
        "url":"https://museum.blob.core.windows.net/masters/source/IMG%200084.JPG","sequencer":"00000000000004420000000000028963"},
      "dataVersion":"","metadataVersion":"1"},
     {"id":"2d1781af","topic":"/subscriptions/0000","subject":"","data":{"validationCode":"512d38b6"},
      "eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2026-11-25T12:00:00Z","dataVersion":"1"}]"#;

    #[test]
    fn azure_event_grid() {
        let e = parse(AZURE_CREATED, "az.json").unwrap();
        assert_eq!(
            e.created,
            [EventObject {
                bucket: "masters".into(),
                key: "source/IMG 0084.JPG".into()
            }]
        );
        assert_eq!(
            e.ignored,
            ["Microsoft.EventGrid.SubscriptionValidationEvent"]
        );
        let cloudevents = AZURE_CREATED.replace("\"eventType\"", "\"type\"");
        assert_eq!(parse(&cloudevents, "az.json").unwrap().created.len(), 1);
        let deleted = AZURE_CREATED.replace("BlobCreated", "BlobDeleted");
        assert!(parse(&deleted, "az.json").unwrap().created.is_empty());
        let err = parse(
            r#"{"eventType":"Microsoft.Storage.BlobCreated","subject":"/x"}"#,
            "az.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("az.json") && err.contains("subject"), "{err}");
    }
}
