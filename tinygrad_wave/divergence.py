"""When a training run is lost, and how it says so: Diverged.

A run is lost when its loss or its weights stop being finite numbers (Run.train finds the
loss, a checkpoint the weights: a diverged run is never saved), or when its numbers are still
finite but it is plainly failing (Run.fit asks the two checks below after every stretch of
steps and every evaluation): a training loss grown GROWTH_LIMIT-fold from its first step's, or
a val loss over FAILING_VAL times a uniform guess's.
"""
import math

from . import backend

GROWTH_LIMIT = 100
FAILING_VAL = 2


class Diverged(Exception):
    """The loss or the weights stopped being finite numbers, or the run is plainly failing;
    `step` is the step where it was found."""

    def __init__(self, step, what):
        super().__init__(f"{what} at step {step}")
        self.step = step


def check_weights(state, step):
    """Diverged unless every array of a model's state_dict is finite."""
    bad = [name for name, a in state.items() if not backend.all_finite(a)]
    if bad:
        raise Diverged(step, f"the weights ({', '.join(bad)}) are no longer finite numbers")


def check_growth(losses, start, step):
    """Diverged when the training loss of steps start+1..step has grown by orders of magnitude
    from the first step's: the weights are still finite numbers, but the run is lost."""
    if step == start:
        return
    first, recent = losses[0], sum(losses[start:]) / (step - start)
    if recent > GROWTH_LIMIT * first:
        raise Diverged(step, f"the training loss grew from {first:.4g} at step 1 to a mean of "
                             f"{recent:.4g} over steps {start + 1:,}-{step:,}")


def check_split_loss(split, loss, vocabulary_size, step):
    """Diverged if a split's loss is not finite, or for val, if it is over FAILING_VAL times
    log(vocabulary size), the loss of a uniform guess: training made the model far worse than
    knowing nothing. (Just above the uniform guess is no proof: data close to random letters
    sits there however it trains.)"""
    if not math.isfinite(loss):
        raise Diverged(step, f"the {split} loss became {loss}")
    uniform = math.log(vocabulary_size)
    if split == "val" and loss > FAILING_VAL * uniform:
        raise Diverged(step, f"the val loss is {loss:.4f}, more than {FAILING_VAL} times a uniform "
                             f"guess's over the {vocabulary_size} characters (log {vocabulary_size} = "
                             f"{uniform:.4f}),")
