//! A small key/value table for configuration: string key → JSON value.
//!
//! JSON (heed's `SerdeJson` codec) rather than the binary row format: settings are few,
//! small, rarely written, and read by people and by the API as JSON anyway; a JSON
//! value also lets a later firmware add fields an older one ignores. Keys are dotted
//! names like `recording.retention_days`; each stage owns its own prefix.

use heed::types::SerdeJson;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Store;
use super::error::StoreError;

/// Longest key: LMDB keys are limited to 511 bytes; names are far shorter.
const MAX_KEY_LEN: usize = 200;

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::Setting {
            key: key.to_owned(),
            reason: format!("keys are 1 to {MAX_KEY_LEN} bytes"),
        });
    }
    Ok(())
}

/// Reports a codec failure against the key, with what went wrong.
fn codec_error(key: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Lmdb(heed::Error::Decoding(e)) => StoreError::Setting {
            key: key.to_owned(),
            reason: format!("the stored value does not have the expected shape: {e}"),
        },
        StoreError::Lmdb(heed::Error::Encoding(e)) => StoreError::Setting {
            key: key.to_owned(),
            reason: format!("the value cannot be written as JSON: {e}"),
        },
        other => other,
    }
}

impl Store {
    /// The value of `key`, or `None` if it was never set.
    pub fn setting<T: DeserializeOwned + 'static>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        check_key(key)?;
        let table = self.tables.settings.remap_data_type::<SerdeJson<T>>();
        self.read(|txn| table.get(txn, key).map_err(StoreError::from))
            .map_err(|e| codec_error(key, e))
    }

    /// Sets `key` to `value`, durably.
    pub fn set_setting<T: Serialize + 'static>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        let table = self.tables.settings.remap_data_type::<SerdeJson<T>>();
        self.write(|txn| table.put(txn, key, value).map_err(StoreError::from))
            .map_err(|e| codec_error(key, e))
    }

    /// [`Store::set_setting`] inside the caller's transaction (for example next to the
    /// account change it belongs with).
    pub fn set_setting_in<T: Serialize + 'static>(
        &self,
        txn: &mut heed::RwTxn<'_>,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        let table = self.tables.settings.remap_data_type::<SerdeJson<T>>();
        table
            .put(txn, key, value)
            .map_err(|e| codec_error(key, StoreError::from(e)))
    }

    /// Removes `key`; returns whether it existed.
    pub fn remove_setting(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        self.write(|txn| Ok(self.tables.settings.delete(txn, key)?))
    }

    /// Every setting, in key order.
    pub fn settings(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let table = self
            .tables
            .settings
            .remap_data_type::<SerdeJson<serde_json::Value>>();
        self.read(|txn| {
            table
                .iter(txn)?
                .map(|row| Ok(row.map(|(k, v)| (k.to_owned(), v))?))
                .collect()
        })
    }
}
