//! Splitting one list of sources between N copies of the same command (array jobs). Pure, except
//! `Shard::from_env`, which reads the array-job environment it is given.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("-shard {0:?}: expected I/N with 0 <= I < N (e.g. 0/4), or auto")]
    Syntax(String),
    #[error("-shard auto: {0}")]
    Env(String),
}

/// Shard `index` of `count`, counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// What `-shard` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    Fixed(Shard),
    /// Read the index (and count) from the array-job environment.
    Auto,
}

impl FromStr for ShardSpec {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        if s == "auto" {
            return Ok(ShardSpec::Auto);
        }
        let bad = || ShardError::Syntax(s.into());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let shard = Shard {
            index: i.trim().parse().map_err(|_| bad())?,
            count: n.trim().parse().map_err(|_| bad())?,
        };
        if shard.index >= shard.count {
            return Err(bad());
        }
        Ok(ShardSpec::Fixed(shard))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the source `key` belongs to this shard: a stable hash (the first 8 bytes of its sha1, as a
    /// big-endian number) modulo the count, the same on every machine and in every version.
    pub fn contains(&self, key: &str) -> bool {
        use sha1::Digest;
        let digest = sha1::Sha1::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % self.count == self.index
    }

    /// The shard of this task in an array job, from the variables each platform sets:
    /// Kubernetes indexed Jobs (`JOB_COMPLETION_INDEX`; the count from `-shard-count`), AWS Batch array jobs
    /// (`AWS_BATCH_JOB_ARRAY_INDEX`, `AWS_BATCH_JOB_ARRAY_SIZE` or `-shard-count`), Slurm job arrays
    /// (`SLURM_ARRAY_TASK_ID` from `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP`, and
    /// `SLURM_ARRAY_TASK_COUNT`) and Cloud Run jobs (`CLOUD_RUN_TASK_INDEX`, `CLOUD_RUN_TASK_COUNT`).
    /// `count_flag` (`-shard-count`) overrides the count found in the environment.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        count_flag: Option<u64>,
    ) -> Result<Shard, ShardError> {
        let num = |name: &str| -> Result<Option<u64>, ShardError> {
            match env(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    ShardError::Env(format!("{name}={v:?} is not a non-negative integer"))
                }),
            }
        };
        let found: Option<(u64, Option<u64>, &str)> = if let Some(i) = num("JOB_COMPLETION_INDEX")?
        {
            Some((i, None, "JOB_COMPLETION_INDEX (Kubernetes)"))
        } else if let Some(i) = num("AWS_BATCH_JOB_ARRAY_INDEX")? {
            Some((
                i,
                num("AWS_BATCH_JOB_ARRAY_SIZE")?,
                "AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch)",
            ))
        } else if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let index = id.checked_sub(min).ok_or_else(|| {
                ShardError::Env(format!(
                    "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                ))
            })? / step;
            Some((
                index,
                num("SLURM_ARRAY_TASK_COUNT")?,
                "SLURM_ARRAY_TASK_ID (Slurm)",
            ))
        } else if let Some(i) = num("CLOUD_RUN_TASK_INDEX")? {
            Some((
                i,
                num("CLOUD_RUN_TASK_COUNT")?,
                "CLOUD_RUN_TASK_INDEX (Cloud Run)",
            ))
        } else {
            None
        };
        let Some((index, env_count, from)) = found else {
            return Err(ShardError::Env(
                "no array-job index in the environment (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX, \
                 SLURM_ARRAY_TASK_ID or CLOUD_RUN_TASK_INDEX); give -shard I/N instead"
                    .into(),
            ));
        };
        let count = count_flag.or(env_count).ok_or_else(|| {
            ShardError::Env(format!(
                "the index comes from {from}, but nothing says how many tasks there are: give -shard-count N"
            ))
        })?;
        if index >= count {
            return Err(ShardError::Env(format!(
                "index {index} (from {from}) is not below the task count {count}"
            )));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }
    fn shard(index: u64, count: u64) -> Shard {
        Shard { index, count }
    }

    #[test]
    fn parse() {
        assert_eq!("0/4".parse(), Ok(ShardSpec::Fixed(shard(0, 4))));
        assert_eq!("3/4".parse(), Ok(ShardSpec::Fixed(shard(3, 4))));
        assert_eq!("auto".parse(), Ok(ShardSpec::Auto));
        for bad in ["4/4", "1/0", "0/0", "-1/4", "1", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        assert_eq!(shard(2, 5).to_string(), "2/5");
    }

    #[test]
    fn every_key_is_in_exactly_one_shard() {
        for count in 1..=7 {
            let mut sizes = vec![0; count as usize];
            for k in 0..700 {
                let key = format!("photos/{k:05}.jpg");
                let owners: Vec<u64> = (0..count)
                    .filter(|&i| shard(i, count).contains(&key))
                    .collect();
                assert_eq!(owners.len(), 1, "{key} in {owners:?} of {count}");
                sizes[owners[0] as usize] += 1;
            }
            // Roughly even: no shard has less than half its share.
            assert!(sizes.iter().all(|&n| n * count * 2 >= 700), "{sizes:?}");
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Fixed values, worked out apart from this code: a change would reshuffle every array job in flight.
        let pinned: [(&str, [u64; 3]); 6] = [
            ("a.jpg", [0, 3, 8]),
            ("b.jpg", [3, 5, 3]),
            ("c.jpg", [0, 5, 0]),
            ("source/IMG_0084.JPG", [0, 0, 8]),
            ("photos/00001.jpg", [2, 6, 6]),
            ("uploads/IMG 0084 (1).png", [1, 1, 9]),
        ];
        for (key, owners) in pinned {
            for (count, want) in [4, 7, 20].into_iter().zip(owners) {
                let got: Vec<u64> = (0..count)
                    .filter(|&i| shard(i, count).contains(key))
                    .collect();
                assert_eq!(got, [want], "{key} of {count}");
            }
        }
    }

    #[test]
    fn from_each_platform() {
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
        assert_eq!(Shard::from_env(&k8s, Some(5)), Ok(shard(2, 5)));
        assert!(Shard::from_env(&k8s, None)
            .unwrap_err()
            .to_string()
            .contains("-shard-count"));
        let batch = env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "7"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "10"),
        ]);
        assert_eq!(Shard::from_env(&batch, None), Ok(shard(7, 10)));
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(Shard::from_env(&slurm, None), Ok(shard(4, 8)));
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(Shard::from_env(&stepped, None), Ok(shard(3, 4)));
        let run = env(&[("CLOUD_RUN_TASK_INDEX", "0"), ("CLOUD_RUN_TASK_COUNT", "3")]);
        assert_eq!(Shard::from_env(&run, None), Ok(shard(0, 3)));
        assert_eq!(Shard::from_env(&run, Some(6)), Ok(shard(0, 6)));
    }

    #[test]
    fn bad_environments_are_explained() {
        let none = env(&[]);
        assert!(Shard::from_env(&none, Some(3))
            .unwrap_err()
            .to_string()
            .contains("no array-job index"));
        let big = env(&[("CLOUD_RUN_TASK_INDEX", "3"), ("CLOUD_RUN_TASK_COUNT", "3")]);
        assert!(Shard::from_env(&big, None)
            .unwrap_err()
            .to_string()
            .contains("not below"));
        let junk = env(&[("JOB_COMPLETION_INDEX", "x")]);
        assert!(Shard::from_env(&junk, Some(2))
            .unwrap_err()
            .to_string()
            .contains("JOB_COMPLETION_INDEX=\"x\""));
    }
}
