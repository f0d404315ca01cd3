"""The ``recommender`` command: serve, ingest, demo."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli.db_commands import db_app
from cli.experiment_commands import experiments_app
from recommender.errors import RecommenderError
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import CatalogFormat, count_rows, detect_format
from recommender.intake.jobs import ImportJob
from recommender.service import RecommenderService, build_service, switch_encoder
from recommender.settings import DEFAULT_TENANT, Settings, get_settings
from recommender.training.encoder import EncoderReport
from recommender.training_job import run_training_job

app = typer.Typer(help="Semantic product recommender.", no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(db_app, name="db")
app.add_typer(experiments_app, name="experiments")


def _tenant(value: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    from recommender.settings import TenantId

    try:
        return str(TypeAdapter(TenantId).validate_python(value))
    except ValidationError as error:
        raise typer.BadParameter("a tenant is lower-case letters, digits, '-' and '_' (up to 40)") from error


TenantOption = Annotated[
    str,
    typer.Option(
        "--tenant",
        callback=_tenant,
        help="The tenant (shop) whose data this works on (default: the implicit one).",
    ),
]
console = Console()
errors_console = Console(stderr=True)


def _serve(
    settings: Settings, service: RecommenderService | None, host: str | None, port: int | None
) -> None:
    import uvicorn

    from api.app import create_app
    from api.security import check_exposure

    host = host or settings.api.host
    port = port or settings.api.port
    check_exposure(host, settings.api)
    console.print(
        f"Web page: [bold]http://{host}:{port}/ui/[/bold]   OpenAPI docs: http://{host}:{port}/docs"
    )
    # uvicorn takes httptools and uvloop (dependencies) when they are installed: HTTP parsing and the event
    # loop in C instead of h11 and asyncio's Python loop.
    if service is None and settings.api.workers > 1:
        _serve_processes(settings, host, port)
        return
    uvicorn.run(
        create_app(settings, service),
        host=host,
        port=port,
        log_level="info",
        access_log=settings.api.access_log,
    )


def _serve_processes(settings: Settings, host: str, port: int) -> None:
    """``settings.api.workers`` API processes on one port (uvicorn's supervisor). Over the embedded store a
    store host process holds it for all of them, started first and stopped last; a model change is
    rebuilt here, once, before any of them opens the store."""
    import uvicorn

    from api.app import CONNECTION_TABLE_VARIABLE
    from api.connection_balance import create_table
    from recommender.store.host import start_store_host
    from recommender.store.shared import HostAddress

    if settings.api.rate_limit_storage.startswith("memory://"):
        console.print(
            f"[yellow]rate limits are counted per process ({settings.api.workers} processes): set "
            "RECO_API__RATE_LIMIT_STORAGE=redis://… to share them[/yellow]"
        )
    store_host = None
    if not settings.qdrant.url:
        try:
            if settings.qdrant.on_model_change == "rebuild":
                from recommender.embedding import build_embedder
                from recommender.rebuild import rebuild_if_model_changed
                from recommender.tenancy import configured_tenants

                embedder = build_embedder(settings.embedding)
                for tenant in configured_tenants(settings):
                    rebuild_if_model_changed(settings.for_tenant(tenant), embedder)
            store_host = start_store_host(Path(settings.qdrant.path))
        except RecommenderError as error:
            errors_console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(2) from error
        os.environ.update(HostAddress(store_host.address, store_host.authkey).environment())
    # Every process writes its metrics here; the one that answers /metrics sums them (api.metrics).
    run_folder = tempfile.mkdtemp(prefix="recommender-run-")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", run_folder)
    # And the connections each holds, so that they spread evenly (api.connection_balance).
    connection_table = Path(run_folder) / "connections"
    create_table(connection_table, settings.api.workers)
    os.environ[CONNECTION_TABLE_VARIABLE] = str(connection_table)
    console.print(f"{settings.api.workers} API processes" + (", one store host" if store_host else ""))
    try:
        uvicorn.run(
            "api.app:create_worker_app",
            factory=True,
            workers=settings.api.workers,
            host=host,
            port=port,
            log_level="info",
            access_log=settings.api.access_log,
        )
    finally:
        if store_host is not None:
            store_host.stop()
        shutil.rmtree(run_folder, ignore_errors=True)


WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, max=64, help="API processes (default RECO_API__WORKERS, 1); about one per core."),
]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: WorkersOption = None,
) -> None:
    """Start the HTTP API."""
    _serve(_with_workers(get_settings(), workers), None, host, port)


def _with_workers(settings: Settings, workers: int | None) -> Settings:
    """``--workers`` over the setting, here and in the environment the API processes start with."""
    if workers is None:
        return settings
    os.environ["RECO_API__WORKERS"] = str(workers)
    return settings.model_copy(update={"api": settings.api.model_copy(update={"workers": workers})})


def import_with_progress(
    service: RecommenderService, path: Path, file_format: CatalogFormat, mapping: FieldMapping | None = None
) -> ImportJob:
    job = service.jobs.create(
        str(path), file_format.value, path=str(path), mapping=mapping.as_json() if mapping else None
    )
    with Progress(
        TextColumn("[bold]importing[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(path.name, total=count_rows(path, file_format))
        service.importer.run_job(
            job.job_id,
            path,
            file_format,
            on_progress=lambda rows: progress.advance(task, rows),
            mapping=mapping,
        )
    return service.jobs.get(job.job_id)


def _print_report(job: ImportJob, max_errors: int = 20) -> None:
    rate = f"{job.rate_per_second:.1f} rows/s" if job.rate_per_second else "n/a"
    if "left out" in job.message:
        console.print(job.message)
    console.print(
        f"{job.succeeded} ok, {job.failed} failed "
        f"({job.embedded} embedded, {job.unchanged} unchanged), {rate}"
    )
    if job.errors:
        table = Table(
            "line", "field", "reason", title=f"rejected rows (first {min(max_errors, len(job.errors))})"
        )
        for error in job.errors[:max_errors]:
            table.add_row(str(error.line), error.field or "", error.reason)
        console.print(table)


@app.command()
def ingest(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="A catalog: .csv/.tsv, .jsonl, .parquet, a Google Merchant feed (TSV, XML), a Shopify CSV.",
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option(help="csv, jsonl, parquet, google-merchant or shopify (default: told from the file)."),
    ] = None,
    map: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help='SOURCE=FIELD, repeatable: --map id=product_id --map "Body (HTML)=description".'
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="A JSON file of column -> field.")
    ] = None,
    queue: Annotated[
        bool, typer.Option(help="Hand the import to the Celery broker instead of running it here.")
    ] = False,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Import a catalog file. Bad rows are reported with their line; good rows go in."""
    from recommender.intake.feeds.mapping import FieldMapping

    settings = get_settings()
    try:
        file_format = detect_format(file, format)
        columns = FieldMapping.from_file(mapping).columns if mapping else {}
        field_mapping = FieldMapping({**columns, **FieldMapping.parse(map or []).columns})
        if queue:
            _enqueue(settings, file.resolve(), file_format, field_mapping, tenant)
            return
        service = build_service(settings, tenant=tenant)
        try:
            job = import_with_progress(service, file.resolve(), file_format, field_mapping)
        finally:
            service.close()
    except RecommenderError as error:
        errors_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    _print_report(job)
    if job.failed:
        raise typer.Exit(1)


def _enqueue(
    settings: Settings, path: Path, file_format: CatalogFormat, mapping: FieldMapping, tenant: str
) -> None:
    from ingest.celery_app import TaskQueue, create_celery_app

    if not settings.celery.broker_url:
        raise typer.BadParameter("--queue needs a broker: set RECO_CELERY__BROKER_URL (CELERY_BROKER_URL)")
    from recommender.database import Database
    from recommender.intake.jobs import JobStore

    jobs = JobStore(Database(settings.events.url, migrate=settings.events.migrate_on_start), tenant)
    job = jobs.create(str(path), file_format.value, path=str(path), mapping=mapping.as_json())
    TaskQueue(create_celery_app(settings.celery), tenant).import_catalog(
        job.job_id, str(path), file_format.value, mapping.as_json()
    )
    console.print(f"queued import job {job.job_id}")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: WorkersOption = None,
) -> None:
    """Load the demo catalog and shoppers (once), then start the API on the embedded defaults."""
    from api.security import check_exposure
    from recommender.demo import demo_catalog_path, demo_events

    settings = _with_workers(get_settings(), workers)
    check_exposure(host or settings.api.host, settings.api)
    service = build_service(settings)
    if service.catalog.count() == 0:
        import_with_progress(service, demo_catalog_path(), CatalogFormat.JSONL)
    if service.events.count() == 0:
        events = demo_events()
        service.events.add(events)
        service.profiles.refresh([event.user_id for event in events])
    console.print(
        f"demo catalog: {service.catalog.count()} products; try GET /users/demo-runner/recommendations"
    )
    if settings.api.workers > 1:
        service.close()  # the API processes open the store through the store host
        _serve(settings, None, host, port)
        return
    _serve(settings, service, host, port)


@app.command()
def train(
    tenant: TenantOption = DEFAULT_TENANT,
    encoder: Annotated[
        bool,
        typer.Option(
            "--encoder",
            help="Fine-tune the embedding model on the stored events (alone: the sequence model stays), "
            "publish it if it earns its place, re-embed the catalog and retrain the parts over it.",
        ),
    ] = False,
) -> None:
    """Train on the stored events and publish (the service picks it up): the sequence model and the parts,
    with the shop's encoder first when RECO_EMBEDDING__FINE_TUNE is on or --encoder is given."""
    settings = get_settings()
    service = build_service(settings, tenant=tenant)
    try:
        with console.status("training" + (" the shop's encoder" if encoder else "")):
            outcome = run_training_job(
                service, lambda old: switch_encoder(old, settings), encoder_only=encoder
            )
        service = outcome.service
    except RecommenderError as error:
        errors_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    finally:
        service.close()
    if outcome.encoder is not None:
        _print_encoder(outcome.encoder)
    report = outcome.training
    if report is None:
        return
    console.print(
        f"published v{report.version} ({report.slot}): {report.users} users, {report.items} items, "
        f"{report.epochs} epochs in {report.seconds:.0f} s ({report.stopped}; "
        f"{'the moving average of the ' if report.weights == 'averaged' else ''}weights of epoch "
        f"{report.best_epoch}), "
        f"validation NDCG@10 {report.validation_ndcg_at_10:.4f}; {report.ranker}"
    )
    if len(report.candidates) > 1:
        compared = ", ".join(
            f"{candidate['name']} {candidate['validation_ndcg_at_10']:.4f}" for candidate in report.candidates
        )
        console.print(
            f"model selection chose {report.chosen} (validation NDCG@10 after the probe: {compared})"
        )
    for stage, gate in report.stages.items():
        console.print(
            f"{stage.replace('_', ' ')}: {'serve' if gate['served'] else 'do not serve'} (validation NDCG@10 "
            f"{gate['with_ndcg_at_10']:.4f} with, {gate['without_ndcg_at_10']:.4f} without, "
            f"{gate['users']} users{_fell_back(gate)})"
        )


def _fell_back(gate: dict) -> str:
    """The LLM re-rank's gate counts the re-ranks that fell back to the retrieval order (time budget)."""
    return f", {gate['fell_back']} re-ranks fell back" if "fell_back" in gate else ""


def _print_encoder(report: EncoderReport) -> None:
    verdict = "published" if report.published else "[yellow]not published[/yellow]"
    console.print(
        f"encoder {report.model_name}: {verdict}: {report.reason}. {report.pairs['trained']} pairs, "
        f"{report.steps} steps in {report.seconds:.0f} s ({report.stopped})"
    )
    if report.pairs.get("shop_searches") or report.pairs.get("shop_searches_checked"):
        console.print(
            f"  the shop's searches: {report.pairs['shop_searches']} (query, chosen product) pairs trained "
            f"on, {report.pairs['shop_searches_checked']} held out to check search"
        )
    for name, figures in report.search.items():
        console.print(
            f"  search '{name}' precision@5: {figures['before']:.3f} before, {figures['after']:.3f} after "
            f"({figures['queries']} queries)"
        )
    gate = report.served_gate
    if "with_ndcg_at_10" in gate:
        console.print(
            f"  served lists on {gate['users']} validation users, NDCG@10: {gate['without_ndcg_at_10']:.4f} "
            f"without it, {gate['with_ndcg_at_10']:.4f} with it ({gate['difference']:+.4f} ± "
            f"{gate['standard_error']:.4f})"
        )
        if "ranking" in gate:
            ranking = gate["ranking"]
            console.print(f"  ranking judged: {ranking['without']} without it, {ranking['with']} with it")
    elif gate:
        console.print(f"  served lists: {gate['note']}")


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Back up one tenant's vectors, events, jobs, conversations and model versions into PATH."""
    from recommender.backup import create_backup

    service = build_service(get_settings(), tenant=tenant)
    try:
        manifest = create_backup(service, path)
    finally:
        service.close()
    points = ", ".join(f"{role} {entry['points']}" for role, entry in manifest.collections.items())
    rows = sum(entry["rows"] for entry in manifest.tables.values())
    console.print(
        f"backed up into {path} in {manifest.seconds:.2f} s: points ({points}), {rows} rows, "
        f"{len(manifest.models)} model files; schema {manifest.schema_revision}"
    )


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A folder made by `backup`.")],
    replace: Annotated[
        bool, typer.Option(help="Delete what the tenant holds first (otherwise it must hold nothing).")
    ] = False,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Restore a backup made by `recommender backup` into one tenant of the configured stores."""
    from recommender.backup import restore_backup

    service = build_service(get_settings(), tenant=tenant)
    try:
        manifest = restore_backup(service, path, replace=replace)
    finally:
        service.close()
    console.print(f"restored the backup of {manifest.created_at} (release {manifest.release}) from {path}")


@app.command("eval")
def evaluate(
    data: Annotated[
        Path,
        typer.Argument(exists=True, help="RecBole atomic-file folder, or a CSV/TSV, JSONL or Parquet file."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where metrics.json and the plots go.")] = Path(
        "eval-out"
    ),
    variants: Annotated[
        str | None,
        typer.Option(
            "--variants",
            "--methods",
            help="Comma-separated pipeline variants, or 'all' (default: served, fusion, each source alone).",
        ),
    ] = None,
    seed: int = 42,
    seeds: Annotated[int, typer.Option(help="Runs with seeds seed, seed+1, ...; reports mean and std.")] = 1,
    epochs: Annotated[
        int | None, typer.Option(help="Sequence-model epochs (default: RECO_COLLAB__EPOCHS); reproducible.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Safety cap on training time; a warning says when it fires.")
    ] = None,
    min_user_interactions: int = 3,
    min_item_interactions: int = 0,
    tie_order: Annotated[str, typer.Option(help="row (stable, file order) or item (by item id).")] = "row",
    cold_share: Annotated[
        float, typer.Option(help="Share of test items held out for the cold-start split (0: skip it).")
    ] = 0.1,
    split: Annotated[
        str,
        typer.Option(
            help="both, warm (every user; same as --cold-share 0) or cold (only the users whose test item "
            "has no training events: its own trainings, about half the time)."
        ),
    ] = "both",
    rules: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="A JSON list of merchandising rules (as POST /rules takes): the served lists are measured "
            "again with them (served+rules), so the table shows what they cost.",
        ),
    ] = None,
    llm_sample: Annotated[
        int,
        typer.Option(
            help="Re-rank the served list with the LLM for this many users (0: skip); RECO_LLM__* "
            "settings, or the local SmolLM2 when none is set."
        ),
    ] = 0,
    max_users: Annotated[
        int | None, typer.Option(help="Rank only this many sampled test users (the protocol uses all).")
    ] = None,
    item_features: Annotated[
        str | None,
        typer.Option(help="Catalog attributes the ranker reads (default: RECO_PIPELINE__ITEM_FEATURES)."),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            help="Item file for table data (title, genres or categories, description, brand, price, "
            "other columns)."
        ),
    ] = None,
    user_column: str = "user_id",
    item_column: str = "item_id",
    time_column: Annotated[
        str, typer.Option(help="Unix seconds, milliseconds or dates (ISO 8601 or another common form).")
    ] = "timestamp",
    rating_column: Annotated[
        str,
        typer.Option(
            help="Ratings on any scale (stretched onto 1-5); a column of counts or of one value is read as "
            "purchases."
        ),
    ] = "rating",
    tenant: TenantOption = DEFAULT_TENANT,
    fine_tune_encoder: Annotated[
        bool | None,
        typer.Option(
            "--fine-tune-encoder/--no-fine-tune-encoder",
            help="Also fine-tune the shop's encoder after training and measure served, fusion, text and new "
            "again with it (rows suffixed +encoder), same seed (default: RECO_EMBEDDING__FINE_TUNE).",
        ),
    ] = None,
) -> None:
    """Offline evaluation through the served pipeline: replays the data into a temporary service, trains
    it with the service's training job, and measures what the API would return (leave-one-out)."""
    from recommender.embedding import build_embedder
    from recommender.evaluation.data import ColumnMapping
    from recommender.evaluation.run import EvaluationConfig, run_evaluation
    from recommender.evaluation.split import SplitOptions, TieOrder
    from recommender.settings import LLMSettings

    # A tenant's evaluation runs its own settings (its overrides) in the temporary service.
    if split not in ("both", "warm", "cold"):
        raise typer.BadParameter("choose both, warm or cold", param_hint="--split")
    if split == "cold" and cold_share <= 0:
        raise typer.BadParameter("the cold-start split needs --cold-share above 0", param_hint="--split")
    settings = get_settings().for_tenant(tenant)
    if fine_tune_encoder is not None:
        settings.embedding = settings.embedding.model_copy(update={"fine_tune": fine_tune_encoder})
    if item_features is not None:
        features = [name.strip() for name in item_features.split(",") if name.strip()]
        settings.pipeline = settings.pipeline.model_copy(update={"item_features": features})
    if llm_sample > 0:
        # Measured without the per-request budget (any backend): a fallback would hide what the model does.
        chosen = settings.llm if settings.llm.backend != "none" else LLMSettings(backend="local")
        settings.llm = chosen.model_copy(update={"timeout_seconds": max(60.0, chosen.timeout_seconds)})
    config = EvaluationConfig(
        data_path=data,
        out_dir=out,
        settings=settings,
        variants=_variants(variants),
        split=SplitOptions(
            min_user_interactions=min_user_interactions,
            min_item_interactions=min_item_interactions,
            tie_order=TieOrder(tie_order),
            seed=seed,
        ),
        seeds=seeds,
        epochs=epochs,
        max_minutes=max_minutes,
        cold_item_share=0.0 if split == "warm" else cold_share,
        warm_split=split != "cold",
        llm_sample=llm_sample,
        rules=_read_rules(rules),
        max_users=max_users,
        items_path=items,
        columns=ColumnMapping(
            user=user_column, item=item_column, timestamp=time_column, rating=rating_column
        ),
    )
    with Progress(TextColumn("{task.description}"), console=console) as progress:
        step = progress.add_task("evaluation")
        try:
            result = run_evaluation(
                config,
                lambda: build_embedder(settings.embedding),
                console,
                on_step=lambda name: progress.update(step, description=f"evaluation: {name}"),
            )
        except RecommenderError as error:
            errors_console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(2) from error
    for path in result.files:
        console.print(f"wrote {path}")


def _variants(requested: str | None) -> list[str]:
    from recommender.pipeline.variants import DEFAULT_VARIANTS, VARIANTS

    if requested is None:
        return list(DEFAULT_VARIANTS)
    if requested.strip() == "all":
        return list(VARIANTS)
    return [name.strip() for name in requested.split(",") if name.strip()]


def _read_rules(path: Path | None) -> list:  # type: ignore[type-arg]
    if path is None:
        return []
    import json

    from pydantic import TypeAdapter, ValidationError

    from recommender.pipeline.merchandising import MerchRule

    try:
        return TypeAdapter(list[MerchRule]).validate_python(json.loads(path.read_text()))
    except (ValueError, ValidationError) as error:
        raise typer.BadParameter(f"{path}: {str(error).splitlines()[0]}", param_hint="--rules") from error


@app.command()
def simulate(
    data: Annotated[
        Path, typer.Argument(exists=True, help="RecBole atomic-file folder, or a CSV/JSONL file.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where simulation.json goes.")] = Path("simulation-out"),
    experiments: Annotated[int, typer.Option(min=1, help="A/A and A/B experiments to replay.")] = 100,
    epochs: Annotated[
        int | None, typer.Option(help="Sequence-model epochs (default: the settings').")
    ] = None,
    max_users: Annotated[
        int | None, typer.Option(help="Shoppers to replay (default: every test user).")
    ] = None,
    seed: Annotated[int, typer.Option()] = 42,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Held-out histories replayed as shoppers: one served-vs-popular experiment live through the service,
    then many A/A and A/B experiments over the same lists (how honest the intervals are, how often the
    better arm is found)."""
    import dataclasses
    import json

    from recommender.embedding import build_embedder
    from recommender.evaluation.data import load_dataset
    from recommender.evaluation.run import report_skipped
    from recommender.evaluation.simulate import SimulationConfig, run_simulation

    settings = get_settings().for_tenant(tenant)
    config = SimulationConfig(
        settings=settings, experiments=experiments, seed=seed, epochs=epochs, max_users=max_users
    )
    dataset = load_dataset(data)
    report_skipped(dataset, out, console)
    with console.status("simulating") as status:
        result = run_simulation(
            config,
            dataset,
            build_embedder(settings.embedding),
            on_step=lambda name: status.update(f"simulation: {name}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "simulation.json"
    data = {**dataclasses.asdict(result), "live_report": result.live_report.model_dump()}
    path.write_text(json.dumps(data, indent=2) + "\n")
    table = Table(title=f"live experiment: served vs popular, {result.users} shoppers, one list each")
    for column in ("arm", "lists", "CTR [95% CI]", "conversion", "revenue / 1000 lists", "CTR vs control"):
        table.add_column(column)
    for arm in result.live_report.arms:
        versus = "-"
        if arm.difference is not None:
            ctr = arm.difference["ctr"]
            versus = ctr.shown()
        table.add_row(
            arm.arm,
            str(arm.lists),
            f"{arm.ctr:.4f} [{arm.ctr_ci[0]:.4f}, {arm.ctr_ci[1]:.4f}]",
            f"{arm.conversion:.4f}",
            f"{arm.revenue_per_1000:.1f}",
            versus,
        )
    console.print(table)
    console.print(
        f"offline NDCG@10: served {result.offline_ndcg_at_10['served']:.4f}, "
        f"popular {result.offline_ndcg_at_10['popular']:.4f}\n"
        f"A/A: {result.aa_false_positive_rate:.0%} of {result.aa_runs} experiments show a significant CTR "
        f"difference (5% expected)\n"
        f"A/B: served found better in {result.ab_detection_rate:.0%} of {result.ab_runs} experiments "
        f"(mean CTR difference of popular: {result.ab_mean_ctr_difference:+.4f})\nwrote {path}"
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except RecommenderError as error:
        # Configuration problems (a locked store, another model's collection) are the user's to fix.
        errors_console.print(f"[red]error:[/red] {error}")
        raise SystemExit(2) from None
