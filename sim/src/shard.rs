//! Which part of a sweep this process does: `--shard K/N`, or the batch
//! runner's own variables (a Slurm array job's, a Kubernetes Indexed
//! Job's).
//!
//! Invariant: the part is decided by the shard and the work's identity
//! alone (a seed's offset, a cell's places), never by anything a run
//! measured or the machine a shard lands on, so that N shards together do
//! every piece of the work exactly once.

use crate::scenario::InputError;

/// Shard `index` of `count` (1-based, as `--shard 1/4` reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1 to `count`.
    pub index: u64,
    /// How many shards share the work.
    pub count: u64,
}

impl Shard {
    /// The whole of the work: one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// `K/N`, `K` from 1 to `N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not K/N with K from 1 to N (for example 2/4)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether this is the whole of the work.
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether the seed `offset` places after the first is this shard's:
    /// round robin, so that every shard gets seeds from the whole range.
    pub fn owns_offset(self, offset: u64) -> bool {
        offset % self.count == self.index - 1
    }

    /// Whether the piece of work called `key` is this shard's: by a hash of
    /// the key (FNV-1a, the same on every machine), so that pieces that
    /// come in regular patterns still spread evenly.
    pub fn owns_key(self, key: &str) -> bool {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// This process's shard and, when it came from the environment, the words
/// that say so (for stderr). `--shard` wins; without it, a Slurm array
/// task (`SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`, with
/// `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_STEP` when set) or a
/// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, whose count only the
/// manifest knows: `--shard-count`). `env` reads a variable.
pub fn resolve(
    flag: Option<&str>,
    shard_count: Option<u64>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Shard, Option<String>), InputError> {
    let number = |name: &str| -> Result<Option<u64>, InputError> {
        match env(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                InputError::option(name, format!("`{v}` is not a whole number (environment)"))
            }),
        }
    };
    if let Some(text) = flag {
        if shard_count.is_some() {
            return Err(InputError::option(
                "--shard-count",
                "goes with JOB_COMPLETION_INDEX; --shard K/N names its count itself",
            ));
        }
        let shard = Shard::parse(text).map_err(|e| InputError::option("--shard", e))?;
        return Ok((shard, None));
    }
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
            InputError::option(
                "SLURM_ARRAY_TASK_COUNT",
                "is not set although SLURM_ARRAY_TASK_ID is (give --shard K/N instead)",
            )
        })?;
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let offset = id.checked_sub(min).map(|o| o / step);
        let shard = offset
            .map(|o| Shard {
                index: o + 1,
                count,
            })
            .filter(|s| s.count > 0 && s.index <= s.count)
            .ok_or_else(|| {
                InputError::option(
                    "SLURM_ARRAY_TASK_ID",
                    format!("task {id} is not one of {count} tasks from {min} in steps of {step}"),
                )
            })?;
        return Ok((
            shard,
            Some(format!(
                "shard {shard} from SLURM_ARRAY_TASK_ID={id} of SLURM_ARRAY_TASK_COUNT={count}"
            )),
        ));
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = shard_count.ok_or_else(|| {
            InputError::option(
                "--shard-count",
                "JOB_COMPLETION_INDEX is set: give the Job's completions with --shard-count N",
            )
        })?;
        if index >= count {
            return Err(InputError::option(
                "JOB_COMPLETION_INDEX",
                format!("index {index} is not below --shard-count {count}"),
            ));
        }
        let shard = Shard {
            index: index + 1,
            count,
        };
        return Ok((
            shard,
            Some(format!(
                "shard {shard} from JOB_COMPLETION_INDEX={index} and --shard-count {count}"
            )),
        ));
    }
    if shard_count.is_some() {
        return Err(InputError::option(
            "--shard-count",
            "goes with JOB_COMPLETION_INDEX, which is not set",
        ));
    }
    Ok((Shard::WHOLE, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_split_seeds_and_keys_into_disjoint_parts_that_cover_everything() {
        let shards: Vec<Shard> = (1..=4).map(|index| Shard { index, count: 4 }).collect();
        for offset in 0..40 {
            assert_eq!(shards.iter().filter(|s| s.owns_offset(offset)).count(), 1);
        }
        let keys: Vec<String> = (0..200).map(|i| format!("point{i}@{}", i % 4)).collect();
        let mut sizes = [0; 4];
        for k in &keys {
            let owners: Vec<usize> = (0..4).filter(|&i| shards[i].owns_key(k)).collect();
            assert_eq!(owners.len(), 1, "{k}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| n >= 30), "spread evenly: {sizes:?}");
        assert!(Shard::WHOLE.owns_key("anything") && Shard::WHOLE.owns_offset(7));
    }

    #[test]
    fn shard_flags_parse_and_refuse_what_is_not_k_of_n() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/4"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_batch_runners_variables_name_the_shard_and_say_so() {
        let none = env(&[]);
        assert_eq!(resolve(None, None, &none).unwrap(), (Shard::WHOLE, None));
        let (s, said) = resolve(
            None,
            None,
            &env(&[
                ("SLURM_ARRAY_TASK_ID", "7"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_STEP", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(s, Shard { index: 4, count: 4 });
        assert!(said.unwrap().contains("SLURM_ARRAY_TASK_ID=7"));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(
            resolve(None, Some(3), &k8s).unwrap().0,
            Shard { index: 1, count: 3 }
        );
        let e = resolve(None, None, &k8s).unwrap_err();
        assert_eq!(e.key, "--shard-count");
        assert!(resolve(None, Some(1), &env(&[("JOB_COMPLETION_INDEX", "1")])).is_err());
        // The flag wins over the environment.
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert_eq!(
            resolve(Some("2/2"), None, &slurm).unwrap(),
            (Shard { index: 2, count: 2 }, None)
        );
        assert!(resolve(None, None, &env(&[("SLURM_ARRAY_TASK_ID", "0")])).is_err());
    }
}
