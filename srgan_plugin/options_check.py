def check_options(opt, opt_path):
    pass
