"""The names of the supervised methods (thesis ch. 4 and 6), in a module light enough for the
command line's help to read them without importing torch."""

METHODS = ("erm", "mixup", "manifold-mixup", "ict", "mean-teacher")
#: methods that train a mean teacher on the unlabelled data
TEACHER_METHODS = ("ict", "mean-teacher")
