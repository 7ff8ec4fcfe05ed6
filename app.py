"""SketchLab web app: draw and see live guesses, watch the generator draw, let it finish your drawing.

    python app.py                              # http://127.0.0.1:7860 (loopback only)
    python app.py --host 0.0.0.0 --port 8080   # expose it; PORT, GRADIO_SERVER_PORT, GRADIO_SERVER_NAME work too

The only module that imports gradio. It lays out the page and wires each event to one `sketchlab.service.Service`
call; the canvas is JavaScript in `assets/` (gr.HTML + js_on_load), so the drawing lives in the page.
API endpoints (gradio_client): `classify`, `generate`, `complete`, `health`; see docs/app.md.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import time
import urllib.request
from pathlib import Path

_STARTED = time.perf_counter()  # before the gradio import, which is most of the start-up time

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before importing gradio: no look-ups of outside hosts
# Gradio's queue rebuilds a pandas summary of its last 10,000 events after every event, for a monitoring page this
# app does not enable: 2-11 ms of CPU per API request, and pandas imported at the first one. Once per 10^9 events is
# never (docs/reliability.md, "The floor").
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**9))

import gradio as gr  # noqa: E402

from sketchlab.errors import DrawingError, ModelError  # noqa: E402
from sketchlab.page import (  # noqa: E402
    KEEP_DRAWING,
    NewestOnly,
    clamp,
    details_html,
    drawing_problem,
    guesses_html,
    only_dots,
    page_seq,
)
from sketchlab.runtime import MODELS_DIR  # noqa: E402
from sketchlab.service import (  # noqa: E402
    DEFAULT_GUIDANCE,
    GUIDANCE_RANGE,
    MAX_PAYLOAD_CHARS,
    MAX_SEED,
    MAX_VARIATIONS,
    TEMPERATURE_RANGE,
    TOP_GUESS,
    WARMUP_DRAWING,
    Service,
)
from sketchlab.strokes import MAX_POINTS, MAX_STROKES  # noqa: E402

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise (--host 0.0.0.0 to expose)
DEFAULT_PORT = 7860  # Gradio's usual port
MAX_REQUEST_BYTES = 4 * MAX_PAYLOAD_CHARS  # one drawing's JSON, escaped inside the request's JSON; Gradio sets no limit
API_CONCURRENCY = 4  # API requests run at once; ONNX Runtime sessions are thread-safe, and there are few cores
DEFAULT_TEMPERATURE = 0.4  # sketch-rnn samples look clean near 0.2-0.5
DEFAULT_VARIATIONS = 3
DRAWING_DECIDES = "the drawing decides"  # "Finish my drawing as": no category
log = logging.getLogger("sketchlab.app")


def _asset(*names: str) -> str:
    return "\n".join((ASSETS / name).read_text() for name in names)


def _page_error(e: Exception) -> gr.Error:
    """A pop-up in the page. No traceback in the log: the request was bad, or the model problem is logged already."""
    title = "Model unavailable" if isinstance(e, ModelError) else "Cannot use that request"
    return gr.Error(str(e), title=title, print_exception=False)


def _controls(temperature: object, seed: object, guidance: object) -> tuple[float, int, float]:
    """The page's generation controls kept in range, so a typed value never becomes an error: the page shows what was
    used (the seed box is updated), while the API still refuses out-of-range values."""
    return (
        clamp(temperature, *TEMPERATURE_RANGE, DEFAULT_TEMPERATURE),
        int(round(clamp(seed, 0, MAX_SEED, 0))),
        clamp(guidance, *GUIDANCE_RANGE, DEFAULT_GUIDANCE),
    )


def _sketchpad_html(not_words: list[str]) -> str:
    """The canvas template with the server's size limits and the labels of "Finish my drawing as" that are not words."""
    return _asset("sketchpad.html").format(
        max_strokes=MAX_STROKES, max_points=MAX_POINTS, not_words=html.escape(json.dumps(not_words), quote=True)
    )


def build(service: Service) -> gr.Blocks:
    """The page and the API, bound to one loaded `service`."""

    # -- page events (private: the API below has clean signatures) --------------------------------------------------

    newest = NewestOnly()

    def on_strokes(evt: gr.EventData, request: gr.Request) -> tuple[str, str]:
        # Always answers with `seq` in #guesses, even for a bad drawing: the page sends its next live request when
        # the previous one is answered. Problems show in place of the guesses rather than as a pop-up per stroke.
        # An answer overtaken by a newer request of the same page is dropped (gr.skip) instead of shown late.
        data = evt._data if isinstance(evt._data, dict) else {}
        seq, strokes, session = page_seq(data.get("seq")), data.get("strokes"), request.session_hash or ""
        pen_down = data.get("pen_down") is True  # a live request: the last stroke is still being drawn
        settled = data.get("settled") is True and not pen_down  # the pen has rested since the last change
        known = service.classifier.classes if service.classifier is not None else []
        shown = data.get("shown") if data.get("shown") in known else None  # the page's top guess now: only a hint
        newest.start(session, seq)
        if not strokes:
            answer = guesses_html(None, seq), details_html(None)
        elif only_dots(strokes):  # a tap: a drawing in progress, not bad input
            answer = guesses_html(None, seq, note=KEEP_DRAWING), details_html(None)
        else:
            try:
                result = service.classify(strokes, pen_down=pen_down, shown=shown, settled=settled)
                answer = guesses_html(result, seq), details_html(result)
            except ModelError as e:
                answer = guesses_html(None, seq, message=str(e)), details_html(None)
            except DrawingError as e:
                answer = guesses_html(None, seq, message=drawing_problem(str(e))), details_html(None)
        return (gr.skip(), gr.skip()) if newest.overtaken(session, seq) else answer

    def on_finish(
        finish_as: str, temperature: float, seed: float, guidance: float, speed: float, evt: gr.EventData
    ) -> tuple[str, int]:
        data = evt._data if isinstance(evt._data, dict) else {}
        temperature, seed, guidance = _controls(temperature, seed, guidance)
        try:
            done = service.complete(data.get("strokes"), temperature, seed, word=finish_as or None, guidance=guidance)
        except (DrawingError, ModelError) as e:
            raise _page_error(e) from e
        return json.dumps({"op": "finish", **done, "speed": speed, "nonce": time.time_ns()}), seed

    def on_generate(
        word: str, temperature: float, seed: float, guidance: float, n: float, speed: float
    ) -> tuple[str, int]:
        temperature, seed, guidance = _controls(temperature, seed, guidance)
        try:
            drawings = service.generate(word, temperature, seed, n=int(n or 1), guidance=guidance)
        except (DrawingError, ModelError) as e:
            raise _page_error(e) from e
        caption = f"“{word}”, temperature {temperature:g}, guidance {guidance:g}, seed {seed}"
        message = {"word": word, "drawings": drawings, "speed": speed, "caption": caption, "nonce": time.time_ns()}
        return json.dumps(message), seed

    # -- API (gradio_client): errors come back as gradio_client.exceptions.AppError with the message -------------------

    def classify(strokes: str, pen_down: bool = False, shown: str = "", settled: bool = False) -> dict:
        """Strokes as JSON `[[[x, y, t_ms], ...], ...]` -> top-5 of each model: {"fused", "stroke", "cnn"}.
        `pen_down`: the last stroke is still being drawn (a live request), which has its own fusion settings;
        `shown`: the fused guess a live display shows first now ("" for none), kept unless the drawing now points
        clearly elsewhere; `settled`: the pen has rested since the last change (a finished drawing, e.g. one sent
        once), which has its own temperatures."""
        try:
            result = service.classify(strokes, pen_down=pen_down, shown=shown or None, settled=settled)
        except (DrawingError, ModelError) as e:
            raise gr.Error(str(e), print_exception=False) from e
        result.pop("raster")
        return result

    def generate(
        word: str, temperature: float = DEFAULT_TEMPERATURE, seed: int = 0, guidance: float = DEFAULT_GUIDANCE
    ) -> list:
        """A category -> one drawing, strokes of [x, y, t_ms] points in the 0..255 frame, in drawing order.
        `guidance`: 0 (none) to 3; higher draws more typical, less varied drawings."""
        try:
            return service.generate(word, temperature, seed, guidance=guidance)[0]
        except (DrawingError, ModelError) as e:
            raise gr.Error(str(e), print_exception=False) from e

    def complete(
        strokes: str,
        temperature: float = DEFAULT_TEMPERATURE,
        seed: int = 0,
        word: str = "",
        guidance: float = DEFAULT_GUIDANCE,
    ) -> list:
        """Strokes JSON -> only the new strokes that finish the drawing, in the same coordinates. `word`: finish it
        as this category, as "(my top guess)", or "" to let the drawing decide; `guidance` applies to a category."""
        try:
            return service.complete(strokes, temperature, seed, word=word or None, guidance=guidance)["strokes"]
        except (DrawingError, ModelError) as e:
            raise gr.Error(str(e), print_exception=False) from e

    def health() -> dict:
        """Version, ONNX Runtime provider, which models are loaded, and any problems met at start."""
        return service.health()

    # -- layout ---------------------------------------------------------------------------------------------------

    info = service.health()
    loaded = ", ".join(name for name, ok in info["models"].items() if ok) or "none"
    with gr.Blocks(title="SketchLab") as demo:
        gr.Markdown(
            "# SketchLab\nDraw something: the models guess it while you draw. Or pick a category and "
            "watch a model draw it.",
            elem_id="intro",
        )
        if info["problems"]:
            gr.Markdown(
                "**Some features are off:**\n\n" + "\n".join(f"- {p}" for p in info["problems"]), elem_id="problems"
            )
        with gr.Row(equal_height=False, elem_id="draw-row"):
            with gr.Column(scale=3, min_width=360):
                pad = gr.HTML(
                    value="",
                    html_template=_sketchpad_html([DRAWING_DECIDES, TOP_GUESS]),
                    js_on_load=_asset("draw.js", "sketchpad.js"),
                    elem_id="sketchpad",
                    apply_default_css=False,
                )
                finish_as = gr.Dropdown(
                    [(DRAWING_DECIDES, ""), (TOP_GUESS, TOP_GUESS)] + service.categories(),
                    value="",
                    label="Finish my drawing as",
                    info="what you are drawing, if you want to say: the finish then follows that category, "
                    "and “Save strokes” records it as the drawing's word",
                    filterable=True,
                    elem_id="finish-as",
                )
            with gr.Column(scale=2, min_width=300):
                no_guesses = (
                    None if service.classifier else "Guessing is off: the classifier is not loaded (see above)."
                )
                # screen readers hear #guesses-said (assets/guesses.js), which changes only when the headline does
                guesses = gr.HTML(
                    guesses_html(None, message=no_guesses),
                    elem_id="guesses",
                    js_on_load=_asset("guesses.js"),
                )
                with gr.Accordion("What each model saw", open=False, elem_id="details-box"):
                    details = gr.HTML(details_html(None), elem_id="model-details")
        gr.Markdown("## Let the model draw")
        with gr.Row(elem_id="generate-row"):
            categories = service.categories()
            default_word = (
                "cat" if any(w == "cat" for _, w in categories) else (categories[0][1] if categories else None)
            )
            word = gr.Dropdown(
                categories,
                value=default_word,
                label="Category (type to search)",
                info="“recognised”: how often the classifier named the generator's own drawings of it",
                filterable=True,
                elem_id="category",
                scale=2,
                min_width=240,
            )
            temperature = gr.Slider(
                *TEMPERATURE_RANGE,
                value=DEFAULT_TEMPERATURE,
                step=0.01,
                label="Temperature",
                info="lower: more typical drawings; higher: wilder ones",
                elem_id="temperature",
            )
            seed = gr.Number(
                0,
                precision=0,
                label="Seed",
                info=f"same seed and settings, same drawing (0 to {MAX_SEED})",
                elem_id="seed",
            )
            guidance = gr.Slider(
                *GUIDANCE_RANGE,
                value=DEFAULT_GUIDANCE,
                step=0.1,
                label="Guidance",
                info="higher: more like the category, less varied; 0: off",
                elem_id="guidance",
            )
            n = gr.Slider(1, MAX_VARIATIONS, value=DEFAULT_VARIATIONS, step=1, label="Drawings side by side")
            speed = gr.Slider(0.25, 4, value=1, step=0.25, label="Drawing speed", elem_id="speed")
        draw = gr.Button("Draw it", variant="primary", elem_id="draw-it")
        generated = gr.HTML(
            value="",
            html_template=_asset("generated.html"),
            js_on_load=_asset("draw.js", "generated.js"),
            elem_id="generated",
            apply_default_css=False,
        )
        gr.Markdown(
            "Temperature, seed and guidance also steer **Finish my drawing** (guidance only as a named category). "
            "Models trained on the "
            "[Quick, Draw! dataset](https://github.com/googlecreativelab/quickdraw-dataset), Google (CC BY 4.0)."
        )
        gr.Markdown(
            f"SketchLab {info['version']} · ONNX Runtime on {info['provider']} · models loaded: {loaded}",
            elem_id="status-line",
        )

        # The live guesses: while the pen is down the page keeps one request in flight and sends only the newest
        # drawing next; a pen-up goes at once and the overtaken answer is dropped (on_strokes). No progress overlay
        # and no queue round trip (STACK-NOTES: ~31 ms pointer-up to label without the queue vs ~51 ms through it).
        # Gradio's trigger_mode="always_last" lost the last request of a burst in our tests, hence "multiple" and
        # the page-side control.
        pad.strokes_done(
            on_strokes,
            None,
            [guesses, details],
            trigger_mode="multiple",
            show_progress="hidden",
            queue=False,
            api_visibility="private",
        )
        pad.finish(
            on_finish,
            [finish_as, temperature, seed, guidance, speed],
            [pad, seed],  # the seed used, in range
            show_progress="hidden",
            api_visibility="private",
            concurrency_limit=API_CONCURRENCY,
        )
        draw.click(
            on_generate,
            [word, temperature, seed, guidance, n, speed],
            [generated, seed],  # the seed used, in range
            show_progress_on=generated,
            api_visibility="private",
            concurrency_limit=API_CONCURRENCY,
        )

        gr.api(classify, api_name="classify", concurrency_limit=API_CONCURRENCY)
        gr.api(generate, api_name="generate", concurrency_limit=API_CONCURRENCY)
        gr.api(complete, api_name="complete", concurrency_limit=API_CONCURRENCY)
        gr.api(health, api_name="health", concurrency_limit=API_CONCURRENCY)
    return demo


def warm_up_live_path(demo: gr.Blocks, url: str) -> None:
    """Send one drawing through the exact HTTP route the canvas uses. A fresh server spends ~0.7 s of lazy set-up
    on its first request; paid here, at start, the first user's first guess is as fast as any other."""
    (live,) = [fn for fn in demo.fns.values() if fn.name == "on_strokes"]
    body = {
        "data": [],
        "event_data": {"strokes": WARMUP_DRAWING, "seq": 0},
        "fn_index": live._id,
        "trigger_id": live.targets[0][0],
        "session_hash": "warm-up",
    }
    request = urllib.request.Request(
        f"{url.rstrip('/')}/gradio_api/run/predict", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
    except OSError as e:  # the app serves anyway; only the first guess is slower
        log.warning("warm-up request failed: %s", e)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env_port = os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    host = os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST  # a Hugging Face Space sets it to 0.0.0.0
    parser.add_argument("--host", default=host, help="interface to listen on (0.0.0.0 exposes the app)")
    parser.add_argument("--port", type=int, default=int(env_port or DEFAULT_PORT), help="port (or $PORT)")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="folder with the .onnx models and manifests")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes, one line each

    service = Service.load(args.models)
    demo = build(service)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        css=_asset("app.css"),
        head=f"<style>{_asset('frame.css')}</style>",
        show_error=True,
        prevent_thread_lock=True,
        quiet=True,
        app_kwargs={"max_body_size": MAX_REQUEST_BYTES},  # FastAPI answers 413 before reading more
    )
    warm_up_live_path(demo, demo.local_url)
    log.info("serving on %s (%.2f s after start)", demo.local_url, time.perf_counter() - _STARTED)
    demo.block_thread()


if __name__ == "__main__":
    main()
