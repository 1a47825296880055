"""The ``%specnb help`` reference (the magics themselves live in `specnb.magics`)."""

__all__ = ["HELP"]

HELP = """\
specnb magics — specialists vs generalists, in the notebook

  %specnb load SOURCE [--as ALIAS] [--task T] [--device D] [--dtype T] [--pin]
                      [--trust-remote-code] [--allow-pickle] [--model NAME] [--method M] [--concurrency N]
      Load a model (catalog name, folder, .gguf/.ftz file, hub id, or an endpoint: openai:NAME or a
      base URL with --model; key from $OPENAI_API_KEY, never on the line); returns its handle.
  %specnb unload ALIAS [ALIAS ...] | --all
      Unload models and free their memory.
  %specnb models [--table]
      The model panel: loaded models, memory against the budget, unload buttons (live).
      --table (or a terminal IPython): the same as a DataFrame.
  %specnb catalog
      The models specnb knows by name (DataFrame).

  %%specnb compare TASK [--models A,B] [--labels EXPR] [--label-space VAR|a,b,c]
                        [--data VAR --text COL --label COL] [--sample N] [--seed S]
                        [--name NAME] [--price-per-hour USD] [--batch-size N] [--out VAR]
                        [--reference MODEL]
      One input per line of the cell ({expr} is replaced by its value; {{ and }} are braces).
      With --data, the inputs come from a DataFrame: use the line magic (%specnb compare ...),
      since IPython refuses a cell magic with an empty body. TASK: classify, sentiment, langid, ner.
      --models defaults to the task's catalog specialist plus the configured generalist.
      --labels gives the gold labels, one per input line. --labels, --data and --sample take a
      variable or an expression, as {expr} does (--labels gold[:2]). --reference: the model the
      verdicts compare with (default: the best specialist). Shows the compare view and
      returns the Comparison (also stored in --out VAR).

  %%specnb pipe NAME [--sample VAR|N] [--replace]
      Append stages to the pipeline NAME (a specnb.Pipeline in the notebook), one per line:
        lang = langid(text)
        topic = cascade(minilm, smollm2, labels=topics, threshold=0.7)(text)
        route lang: en -> sent = vader(text); * -> skip
        my_stage                       (a @specnb.stage function over a batch of records)
      --sample VAR previews every cell on VAR's first 20 items (--sample N: N items);
      --replace starts over.

  %specnb specialize BASE --data VAR [--text COL] [--label COL] [--task T] [--as ALIAS] [--eval F]
                        [--method head|finetune] [--epochs N] [--learning-rate X] [--batch-size N]
                        [--patience N] [--teacher MODEL] [--min-confidence X] [--max-length N]
                        [--out PATH] [--overwrite]
      Train a specialist on BASE (an encoder: minilm, a folder, a hub id) from the labelled
      DataFrame VAR (columns text and label unless named); returns the loaded model
      (model.training: held-out metrics; model.eval_data: the held-out items to compare on).
      --method head fits a head on the frozen encoder; finetune trains it all (--epochs,
      --learning-rate; --patience N: epochs without a better held-out accuracy before an early
      stop). --teacher MODEL labels the texts, keeping answers scored >= --min-confidence.
      --eval: the held-out share (0: none). The live training view's Stop button (or a kernel
      interrupt) ends training after the current step.

  %specnb runs
      Stored runs, newest first (DataFrame).
  %specnb show RUN_ID
      A stored run as a Comparison (compare view).
  %specnb help
      This reference.

Defaults are traitlets: %config SpecnbMagics.device = "cpu"   (also generalist, dtype,
price_per_hour; or c.SpecnbMagics.* in ipython_config.py).
"""
