//! `appointments` and `schedule_events`. Every change is one transaction that checks for a
//! double booking under the schedule's write lock, writes the appointment and appends its event; the
//! event id orders changes for live pushes and for catching up after a reconnect.

use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{Appointment, ScheduleChange};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::storage::{Storage, StorageError, parse_id};

/// Why a schedule change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The clinician already has a booked appointment overlapping this time (409).
    #[error("the clinician already has an appointment at that time")]
    DoubleBooked,
    /// No such appointment (404).
    #[error("no such appointment")]
    NotFound,
    /// A cancelled appointment cannot change again (409).
    #[error("the appointment is cancelled")]
    Cancelled,
    /// Times out of order or out of range (400).
    #[error("`ends_at_ms` must be after `starts_at_ms`, and an appointment at most 12 hours")]
    InvalidTimes,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The reminders the change queues or withdraws could not be written (the change is not
    /// stored either: they share its transaction).
    #[error(transparent)]
    Reminders(#[from] crate::reminders::ReminderError),
}

impl From<sqlx::Error> for ScheduleError {
    fn from(error: sqlx::Error) -> Self {
        ScheduleError::Storage(StorageError::Query(error))
    }
}

/// Whose appointments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// One clinician's.
    Clinician(UserId),
    /// One patient's.
    Patient(PatientId),
    /// Everyone's.
    Practice,
}

impl Filter {
    /// The condition and its one parameter (`$1`), for `appointments` and `schedule_events`.
    fn condition(self) -> (&'static str, String) {
        match self {
            Filter::Clinician(id) => ("clinician_id = $1", id.to_string()),
            Filter::Patient(id) => ("patient_id = $1", id.to_string()),
            Filter::Practice => ("$1 = $1", String::new()),
        }
    }
}

/// A stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its place in the practice's order of changes.
    pub event_id: u64,
    /// What happened.
    pub change: ScheduleChange,
    /// The appointment after it.
    pub appointment: Appointment,
}

/// The longest appointment accepted.
const MAX_LENGTH_MS: i64 = 12 * 3600 * 1000;

/// The schedule tables.
#[derive(Clone)]
pub struct Schedule {
    storage: Storage,
    /// Lead times (minutes) of reminders for patients who chose none.
    reminder_lead_minutes: std::sync::Arc<Vec<u32>>,
}

const COLUMNS: &str = "appointment_id, clinician_id, patient_id, starts_at_ms, ends_at_ms, status";

impl Schedule {
    /// The schedule of `storage`; every change queues or withdraws its reminders in its own
    /// transaction, with `reminder_lead_minutes` for patients who chose no lead times.
    pub fn new(storage: Storage, reminder_lead_minutes: Vec<u32>) -> Self {
        Self { storage, reminder_lead_minutes: std::sync::Arc::new(reminder_lead_minutes) }
    }

    /// Writes the change's event and its reminders, then commits.
    async fn commit(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        change: ScheduleChange,
        appointment: Appointment,
        now_ms: i64,
    ) -> Result<Change, ScheduleError> {
        let change = append_event(&mut tx, change, appointment, now_ms).await?;
        crate::reminders::outbox::on_change(
            &mut tx,
            change.change,
            &change.appointment,
            &self.reminder_lead_minutes,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Books an appointment.
    pub async fn book(
        &self,
        clinician: UserId,
        patient: PatientId,
        starts_at_ms: i64,
        ends_at_ms: i64,
        by: UserId,
        now_ms: i64,
    ) -> Result<Change, ScheduleError> {
        check_times(starts_at_ms, ends_at_ms)?;
        let appointment = Appointment {
            id: Uuid::new_v4(),
            clinician_id: *clinician.as_uuid(),
            patient_id: *patient.as_uuid(),
            starts_at_ms,
            ends_at_ms,
            status: "booked".into(),
        };
        let mut tx = self.begin_write().await?;
        refuse_overlap(&mut tx, &appointment).await?;
        sqlx::query(
            "INSERT INTO appointments (appointment_id, clinician_id, patient_id, starts_at_ms, ends_at_ms, status, \
             created_by, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'booked', $6, $7, $7)",
        )
        .bind(appointment.id.to_string())
        .bind(clinician.to_string())
        .bind(patient.to_string())
        .bind(starts_at_ms)
        .bind(ends_at_ms)
        .bind(by.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, ScheduleChange::Created, appointment, now_ms).await
    }

    /// Moves a booked appointment to another time.
    pub async fn reschedule(
        &self,
        id: Uuid,
        starts_at_ms: i64,
        ends_at_ms: i64,
        now_ms: i64,
    ) -> Result<Change, ScheduleError> {
        check_times(starts_at_ms, ends_at_ms)?;
        let mut tx = self.begin_write().await?;
        let current = locked_get(&mut tx, id).await?;
        if current.status != "booked" {
            return Err(ScheduleError::Cancelled);
        }
        let moved = Appointment { starts_at_ms, ends_at_ms, ..current };
        refuse_overlap(&mut tx, &moved).await?;
        sqlx::query(
            "UPDATE appointments SET starts_at_ms = $2, ends_at_ms = $3, updated_at_ms = $4 WHERE appointment_id = $1",
        )
        .bind(id.to_string())
        .bind(starts_at_ms)
        .bind(ends_at_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        self.commit(tx, ScheduleChange::Rescheduled, moved, now_ms).await
    }

    /// Cancels a booked appointment.
    pub async fn cancel(&self, id: Uuid, now_ms: i64) -> Result<Change, ScheduleError> {
        let mut tx = self.begin_write().await?;
        let current = locked_get(&mut tx, id).await?;
        if current.status != "booked" {
            return Err(ScheduleError::Cancelled);
        }
        sqlx::query("UPDATE appointments SET status = 'cancelled', updated_at_ms = $2 WHERE appointment_id = $1")
            .bind(id.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let cancelled = Appointment { status: "cancelled".into(), ..current };
        self.commit(tx, ScheduleChange::Cancelled, cancelled, now_ms).await
    }

    /// One appointment.
    pub async fn get(&self, id: Uuid) -> Result<Option<Appointment>, ScheduleError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1")))
                .bind(id.to_string())
                .fetch_optional(self.storage.pool())
                .await?;
        Ok(row.as_ref().map(appointment).transpose()?)
    }

    /// The newest event id, then the appointments of `filter` ending after `from_ms` (booked
    /// and cancelled), oldest first. Read in that order, any change committed in between is in
    /// the list *and* pushed after it (harmless: a push carries the whole new state).
    pub async fn snapshot(&self, filter: Filter, from_ms: i64) -> Result<(u64, Vec<Appointment>), ScheduleError> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(event_id) FROM schedule_events").fetch_one(self.storage.pool()).await?;
        let (condition, param) = filter.condition();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM appointments WHERE {condition} AND ends_at_ms > $2 ORDER BY starts_at_ms, appointment_id \
             LIMIT 5000"
        )))
        .bind(param)
        .bind(from_ms)
        .fetch_all(self.storage.pool())
        .await?;
        let appointments = rows.iter().map(appointment).collect::<Result<_, _>>()?;
        Ok((u64::try_from(last.unwrap_or(0)).unwrap_or(0), appointments))
    }

    /// The changes of `filter` after event `after`, oldest first; `None` when more than
    /// `limit` happened since (the client should take a fresh snapshot instead).
    pub async fn changes_after(
        &self,
        filter: Filter,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<Change>>, ScheduleError> {
        let (condition, param) = filter.condition();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT event_id, change, appointment FROM schedule_events WHERE {condition} AND event_id > $2 \
             ORDER BY event_id LIMIT $3"
        )))
        .bind(param)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(self.storage.pool())
        .await?;
        if rows.len() > limit {
            return Ok(None);
        }
        rows.iter().map(stored_change).collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// A transaction holding the schedule's write lock (see `Backend::lock_schedule_sql`).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, ScheduleError> {
        let backend = self.storage.backend();
        let mut tx = self.storage.pool().begin_with(backend.begin_serialized_sql()).await?;
        if let Some(lock) = backend.lock_schedule_sql() {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        Ok(tx)
    }
}

fn check_times(starts_at_ms: i64, ends_at_ms: i64) -> Result<(), ScheduleError> {
    if ends_at_ms <= starts_at_ms || ends_at_ms - starts_at_ms > MAX_LENGTH_MS || starts_at_ms <= 0 {
        return Err(ScheduleError::InvalidTimes);
    }
    Ok(())
}

async fn refuse_overlap(tx: &mut sqlx::Transaction<'static, sqlx::Any>, a: &Appointment) -> Result<(), ScheduleError> {
    let clash: Option<String> = sqlx::query_scalar(
        "SELECT appointment_id FROM appointments WHERE clinician_id = $1 AND status = 'booked' \
         AND starts_at_ms < $3 AND ends_at_ms > $2 AND appointment_id <> $4 LIMIT 1",
    )
    .bind(a.clinician_id.to_string())
    .bind(a.starts_at_ms)
    .bind(a.ends_at_ms)
    .bind(a.id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    if clash.is_some() { Err(ScheduleError::DoubleBooked) } else { Ok(()) }
}

async fn locked_get(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: Uuid) -> Result<Appointment, ScheduleError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1")))
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(appointment).transpose()?.ok_or(ScheduleError::NotFound)
}

async fn append_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    change: ScheduleChange,
    appointment: Appointment,
    now_ms: i64,
) -> Result<Change, ScheduleError> {
    let state = serde_json::to_string(&appointment).map_err(|_| StorageError::Encode)?;
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO schedule_events (appointment_id, clinician_id, patient_id, change, appointment, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING event_id",
    )
    .bind(appointment.id.to_string())
    .bind(appointment.clinician_id.to_string())
    .bind(appointment.patient_id.to_string())
    .bind(change_text(change))
    .bind(state)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Change { event_id: u64::try_from(event_id).unwrap_or(0), change, appointment })
}

fn change_text(change: ScheduleChange) -> &'static str {
    match change {
        ScheduleChange::Created => "created",
        ScheduleChange::Rescheduled => "rescheduled",
        ScheduleChange::Cancelled => "cancelled",
    }
}

fn appointment(row: &AnyRow) -> Result<Appointment, StorageError> {
    let uuid = |i: usize, column: &'static str| -> Result<Uuid, StorageError> {
        parse_id::<Uuid>(&row.try_get::<String, _>(i)?, column)
    };
    Ok(Appointment {
        id: uuid(0, "appointment_id")?,
        clinician_id: uuid(1, "clinician_id")?,
        patient_id: uuid(2, "patient_id")?,
        starts_at_ms: row.try_get(3)?,
        ends_at_ms: row.try_get(4)?,
        status: row.try_get(5)?,
    })
}

fn stored_change(row: &AnyRow) -> Result<Change, ScheduleError> {
    let event_id: i64 = row.try_get(0)?;
    let change: String = row.try_get(1)?;
    let state: String = row.try_get(2)?;
    let change = match change.as_str() {
        "created" => ScheduleChange::Created,
        "rescheduled" => ScheduleChange::Rescheduled,
        "cancelled" => ScheduleChange::Cancelled,
        _ => return Err(StorageError::Corrupt { column: "change" }.into()),
    };
    let appointment = serde_json::from_str(&state).map_err(|_| StorageError::Corrupt { column: "appointment" })?;
    Ok(Change { event_id: u64::try_from(event_id).unwrap_or(0), change, appointment })
}
