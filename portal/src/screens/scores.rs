//! A patient's PHQ-9 and GAD-7 results over time (`GET /api/v1/patients/{id}/screening-series`),
//! drawn here as inline SVG on the published severity bands, each chart with a table of the same
//! results and a one-line summary beside it for screen readers and for print.

use leptos::prelude::*;
use uuid::Uuid;

use super::widgets::ErrorNote;
use crate::api::{self, Failure, ScreeningPoint, ScreeningSeries};
use crate::live::live;
use crate::text;
use crate::time;

/// The drawing: 320 x 140 units, the plot inside these bounds.
const LEFT: f64 = 34.0;
const RIGHT: f64 = 312.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 124.0;

/// A form's published bands: (band, lowest total, highest total).
fn bands(form: &str) -> &'static [(&'static str, u32, u32)] {
    match form {
        "phq9" => &[
            ("minimal", 0, 4),
            ("mild", 5, 9),
            ("moderate", 10, 14),
            ("moderately_severe", 15, 19),
            ("severe", 20, 27),
        ],
        _ => &[("minimal", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("severe", 15, 21)],
    }
}

/// The highest total a form can have.
fn max_total(form: &str) -> u32 {
    bands(form).last().map_or(1, |b| b.2)
}

fn y_of(total: f64, max: f64) -> f64 {
    BOTTOM - (BOTTOM - TOP) * total / max
}

/// Each point's place in the drawing: x by time (one point sits in the middle), y by total.
fn places(points: &[ScreeningPoint], max: f64) -> Vec<(f64, f64)> {
    let first = points.first().map_or(0, |p| p.submitted_at_ms) as f64;
    let last = points.last().map_or(0, |p| p.submitted_at_ms) as f64;
    points
        .iter()
        .map(|p| {
            let x = if last > first {
                LEFT + 8.0 + (RIGHT - LEFT - 16.0) * (p.submitted_at_ms as f64 - first) / (last - first)
            } else {
                (LEFT + RIGHT) / 2.0
            };
            (x, y_of(p.total as f64, max))
        })
        .collect()
}

/// Both charts of a patient, reloaded when a form is submitted.
#[component]
pub fn ScreeningCharts(patient: Uuid) -> impl IntoView {
    let l = live();
    let series = RwSignal::new(None::<ScreeningSeries>);
    let failure = RwSignal::new(None::<Failure>);
    Effect::new(move |_| {
        l.intake_version.track();
        leptos::task::spawn_local(async move {
            match api::get::<ScreeningSeries>(&format!("/api/v1/patients/{patient}/screening-series")).await {
                Ok(s) => series.set(Some(s)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    view! {
        <section class="card" aria-labelledby="scores-title">
            <h2 id="scores-title">{text::SCORES_OVER_TIME}</h2>
            <ErrorNote failure=failure/>
            {move || match series.get() {
                None if failure.with(Option::is_some) => ().into_any(),
                None => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
                Some(s) => view! {
                    <div class="charts">
                        <ScoreChart form="phq9" points=s.phq9/>
                        <ScoreChart form="gad7" points=s.gad7/>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// One form's results on its bands, with the same results as a table.
#[component]
fn ScoreChart(form: &'static str, points: Vec<ScreeningPoint>) -> impl IntoView {
    let title_id = format!("chart-{form}-title");
    let summary_id = format!("chart-{form}-summary");
    if points.is_empty() {
        return view! {
            <figure class="chart" data-chart=form>
                <figcaption id=title_id>{text::form_short(form)}</figcaption>
                <p class="muted">{text::NO_RESULTS_YET}</p>
            </figure>
        }
        .into_any();
    }
    let max = max_total(form) as f64;
    let at = places(&points, max);
    let line = at.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ");
    let summary = summarize(form, &points);
    view! {
        <figure class="chart" data-chart=form aria-labelledby=title_id.clone()>
            <figcaption id=title_id.clone()>{text::form_title(form)}</figcaption>
            <svg viewBox="0 0 320 140" role="img" aria-labelledby=format!("{title_id} {summary_id}")>
                {bands(form).iter().map(|(band, low, high)| {
                    let top = y_of((*high as f64 + 1.0).min(max), max);
                    let bottom = y_of(*low as f64, max);
                    view! {
                        <rect class=format!("band band-{band}") x=LEFT.to_string() y=format!("{top:.1}")
                            width=(RIGHT - LEFT).to_string() height=format!("{:.1}", bottom - top)/>
                        <text class="tick" x=(LEFT - 4.0).to_string() y=format!("{:.1}", bottom - 1.0)>{low.to_string()}</text>
                    }
                }).collect_view()}
                <text class="tick" x=(LEFT - 4.0).to_string() y=format!("{:.1}", TOP + 6.0)>{(max as u32).to_string()}</text>
                <polyline class=format!("line {form}") points=line/>
                {at.iter().zip(&points).map(|((x, y), p)| view! {
                    <circle class=format!("dot {form}") cx=format!("{x:.1}") cy=format!("{y:.1}") r="3.5">
                        <title>{format!("{}: {} ({})", time::day(p.submitted_at_ms), p.total, text::severity(&p.severity))}</title>
                    </circle>
                }).collect_view()}
                <text class="tick start" x=LEFT.to_string() y="138">{time::day(points[0].submitted_at_ms)}</text>
                {(points.len() > 1).then(|| view! {
                    <text class="tick" x=RIGHT.to_string() y="138">{points.last().map(|p| time::day(p.submitted_at_ms)).unwrap_or_default()}</text>
                })}
            </svg>
            <p class="small" id=summary_id data-summary=form>{summary}</p>
            <table class="scores">
                <caption class="visually-hidden">{format!("{} {}", text::form_short(form), text::RESULTS)}</caption>
                <thead><tr><th scope="col">{text::DATE}</th><th scope="col">{text::SCORE}</th><th scope="col">{text::SEVERITY}</th></tr></thead>
                <tbody>
                    {points.iter().map(|p| view! {
                        <tr data-total=p.total.to_string()>
                            <td>{time::day(p.submitted_at_ms)}</td>
                            <td>{p.total.to_string()}</td>
                            <td><span class=format!("band {}", p.severity)>{text::severity(&p.severity)}</span></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </figure>
    }
    .into_any()
}

/// "Latest 14 (moderate), down 6 since the first of 3 results."
fn summarize(form: &str, points: &[ScreeningPoint]) -> String {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return String::new() };
    let change = last.total as i64 - first.total as i64;
    let trend = match change {
        0 if points.len() > 1 => format!(", {}", text::UNCHANGED),
        0 => String::new(),
        d if d > 0 => format!(", {} {d} {}", text::UP, text::SINCE_FIRST),
        d => format!(", {} {} {}", text::DOWN, -d, text::SINCE_FIRST),
    };
    let count =
        if points.len() == 1 { text::ONE_RESULT.to_owned() } else { format!("{} {}", points.len(), text::RESULTS) };
    format!(
        "{} {} {} ({}){trend}; {count}.",
        text::form_short(form),
        text::LATEST,
        last.total,
        text::severity(&last.severity)
    )
}
