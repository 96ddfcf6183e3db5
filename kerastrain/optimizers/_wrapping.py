"""What every optimizer wrapping another one forwards to it."""

from __future__ import annotations


class ForwardToInner:
    """Mixin for wrappers holding ``self.inner_optimizer``: the learning rate
    (so schedules and learning-rate callbacks act on the wrapped optimizer),
    loss scaling and end-of-training finalization are the inner optimizer's.
    Put it first among the bases so its properties win over Keras's own."""

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)


class ForwardIterationsToInner(ForwardToInner):
    """`ForwardToInner`, and the step counter is the inner optimizer's too."""

    @property
    def iterations(self):
        return self.inner_optimizer.iterations
